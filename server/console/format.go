package console

import (
	"html/template"
	"strconv"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/server/app"
	"github.com/fieldsync/fieldsync/syncproto"
)

// The console's formats, each written once and registered as a template
// function: times in Beijing, amounts in yuan, phones masked or tappable,
// units and people by name.

// beijingTime writes t as the desk's clock in Beijing, whatever the
// server's zone; the zero time is a dash.
func beijingTime(t time.Time, layout string) string {
	if t.IsZero() {
		return "—"
	}
	return t.In(syncproto.Beijing).Format(layout)
}

// yuan writes an amount in fen as yuan with thousands separated:
// 123456 -> 1,234.56.
func yuan(fen int64) string {
	sign := ""
	if fen < 0 {
		sign, fen = "-", -fen
	}
	whole := strconv.FormatInt(fen/100, 10)
	var b strings.Builder
	for i, r := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	cents := fen % 100
	return sign + b.String() + "." + string(rune('0'+cents/10)) + string(rune('0'+cents%10))
}

// maskPhone hides the middle of a phone number for a list, where it is
// read over a shoulder: 13812341234 -> 138****1234. A short number keeps
// only its last two digits.
func maskPhone(phone string) string {
	r := []rune(strings.TrimSpace(phone))
	switch {
	case len(r) == 0:
		return ""
	case len(r) >= 7:
		return string(r[:3]) + "****" + string(r[len(r)-4:])
	case len(r) > 2:
		return "****" + string(r[len(r)-2:])
	}
	return "****"
}

// telHref is a tel: link for a phone number, so a lead at a phone taps to
// call: only digits, a leading + and the separators * # are kept, and the
// result is marked safe for html/template (which would refuse tel:).
func telHref(phone string) template.URL {
	var b strings.Builder
	for i, r := range strings.TrimSpace(phone) {
		switch {
		case r >= '0' && r <= '9', r == '*', r == '#':
			b.WriteRune(r)
		case r == '+' && i == 0:
			b.WriteRune(r)
		}
	}
	return template.URL("tel:" + b.String())
}

// names finds the names of the units and people a page shows by code or
// id, from the user's directory and a warning's history.
type names struct {
	units  map[string]syncproto.Unit
	people map[string]string
}

func newNames(units []syncproto.Unit, people []syncproto.DirectoryUser) *names {
	n := &names{units: make(map[string]syncproto.Unit, len(units)), people: make(map[string]string, len(people))}
	for _, u := range units {
		n.units[u.Code] = u
	}
	for _, p := range people {
		n.people[p.ID] = p.Name
	}
	return n
}

// addPerson names a person the directory does not list (a lead, from the
// history).
func (n *names) addPerson(id, name string) {
	if _, ok := n.people[id]; !ok && id != "" && name != "" {
		n.people[id] = name
	}
}

// unitName is a unit's name, or its code when the directory lacks it (a
// unit above the user's).
func unitName(n *names, code string) string {
	if n != nil {
		if u, ok := n.units[code]; ok && u.Name != "" {
			return u.Name
		}
	}
	return code
}

// personByID is a person's name, or 未知人员 for one not known here.
func personByID(n *names, id string) string {
	if id == "" {
		return "—"
	}
	if n != nil {
		if name, ok := n.people[id]; ok {
			return personName(name)
		}
	}
	return "未知人员"
}

// unitByName finds the unit a filter names: its code, or its name when
// exactly one unit in the directory has it.
func (n *names) unitByName(v string) (code string, ok bool) {
	v = strings.TrimSpace(v)
	if _, known := n.units[v]; known || v == "" {
		return v, true
	}
	for _, u := range n.units {
		if u.Name == v {
			if code != "" {
				return "", false // two units of that name: the code decides
			}
			code = u.Code
		}
	}
	return code, code != ""
}

// indent sets a unit's name in from the left by its level, so a drop-down
// of units reads as the tree it is.
func indent(code string) string {
	switch syncproto.UnitLevel(code) {
	case syncproto.RoleCounty:
		return "\u3000"
	case syncproto.RoleTownship:
		return "\u3000\u3000"
	case syncproto.RoleVillage:
		return "\u3000\u3000\u3000"
	}
	return ""
}

// canImport reports whether the signed-in user may import the feed: the
// navigation offers 导入预警 only to them (app.CanImportFeed's rule).
func canImport(u syncproto.UserInfo) bool {
	return app.CanImportFeed(app.Principal{Actor: syncproto.Actor{Role: u.Role}, Admin: u.Admin}) == nil
}

func init() {
	funcs["local"] = beijingTime
	funcs["indent"] = indent
	funcs["canImport"] = canImport
	// yuan replaces dashboard.go's plain %.2f: amounts read 1,234.56.
	funcs["yuan"] = yuan
	funcs["maskPhone"] = maskPhone
	funcs["tel"] = telHref
	funcs["unitName"] = unitName
	funcs["personByID"] = personByID
}
