package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"sync"
	"time"

	"github.com/fieldsync/fieldsync/syncproto"
)

// session is one signed-in browser. Its actions go through the same op
// path as phones, as a device of its user marked a console session
// (app.ConsoleLogin), with its own client_seq; it is not a phone and is
// listed nowhere as one.
type session struct {
	id       string
	csrf     string
	user     syncproto.UserInfo
	deviceID string
	access   string
	refresh  string
	expires  time.Time
	lastSeen time.Time
	// created is when it signed in: it ends a lifetime later, used or
	// not.
	created time.Time
	// seq is the last client_seq this browser's ops used.
	seq uint64
	// listText is the list's free-text search: kept here, never in a
	// URL, so a searched name stays out of links and logs. Guarded by mu.
	listText string
	// search is the accounts page's search text (admin.go).
	search string
	mu     sync.Mutex
}

func (sess *session) accountSearch() string {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.search
}

func (sess *session) setAccountSearch(text string) {
	sess.mu.Lock()
	sess.search = text
	sess.mu.Unlock()
}

// sessions holds the signed-in browsers in memory: a restart signs them
// out, which a desk user shrugs off, and nothing of them but the device
// record their actions need reaches the disk (that record ends with the
// session, and at the next start: app.EndConsoleSessions).
type sessions struct {
	mu   sync.Mutex
	byID map[string]*session
	// idle ends a session unused this long; lifetime any session this
	// long after its sign-in.
	idle, lifetime time.Duration
	now            func() time.Time
	// end signs out, in the store, the session forgotten for being over,
	// so that its refresh token stops at once and its record goes.
	// Called without mu held.
	end func(*session)
}

func newSessions(idle, lifetime time.Duration, now func() time.Time, end func(*session)) *sessions {
	return &sessions{byID: map[string]*session{}, idle: idle, lifetime: lifetime, now: now, end: end}
}

// over reports whether sess has ended: unused for the idle time, or past
// its lifetime.
func (s *sessions) over(sess *session) bool {
	now := s.now()
	return now.Sub(sess.lastSeen) > s.idle || now.Sub(sess.created) >= s.lifetime
}

func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *sessions) add(sess *session) {
	sess.id, sess.csrf, sess.lastSeen, sess.created = randomToken(), randomToken(), s.now(), s.now()
	s.mu.Lock()
	s.byID[sess.id] = sess
	s.mu.Unlock()
}

// sweep ends the sessions that are over. A sign-in runs it first, so that
// browsers closed without signing out do not pile up in memory.
func (s *sessions) sweep() {
	var idle []*session
	s.mu.Lock()
	for id, old := range s.byID {
		if s.over(old) {
			delete(s.byID, id)
			idle = append(idle, old)
		}
	}
	s.mu.Unlock()
	s.ended(idle...)
}

// ended signs out the devices of sessions just forgotten.
func (s *sessions) ended(gone ...*session) {
	if s.end == nil {
		return
	}
	for _, sess := range gone {
		s.end(sess)
	}
}

// get returns a live session and marks it seen; one that is over is
// ended.
func (s *sessions) get(id string) *session {
	s.mu.Lock()
	sess := s.byID[id]
	if sess == nil {
		s.mu.Unlock()
		return nil
	}
	if s.over(sess) {
		delete(s.byID, id)
		s.mu.Unlock()
		s.ended(sess)
		return nil
	}
	sess.lastSeen = s.now()
	s.mu.Unlock()
	return sess
}

func (s *sessions) remove(id string) {
	s.mu.Lock()
	delete(s.byID, id)
	s.mu.Unlock()
}

// checkCSRF compares a form's token with the session's in constant time.
func (sess *session) checkCSRF(token string) bool {
	return token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(sess.csrf)) == 1
}
