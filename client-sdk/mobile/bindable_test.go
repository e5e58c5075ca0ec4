package mobile_test

import (
	"fmt"
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// TestBindable fails when the package exports something gobind cannot
// bind. gobind itself does not fail then: it skips the name with a comment
// and the app silently loses it. `make test` also runs gobind; this test
// guards the API where gobind is not installed.
func TestBindable(t *testing.T) {
	pkg, err := build.Default.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var files []*ast.File
	for _, name := range pkg.GoFiles {
		f, err := parser.ParseFile(fset, filepath.Join(pkg.Dir, name), nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	for _, p := range bindProblems(fset, files) {
		t.Error(p)
	}
}

// TestBindableCheck: the check finds each kind of unbindable export and
// accepts every bindable one.
func TestBindableCheck(t *testing.T) {
	const src = `package p

import ("context"; "time")

type T struct {
	A time.Time
	B []string
	C map[string]int
	D uint64
	E int
	F []byte
	G *T
	H T
	I L
	hidden []string
	time.Duration
}
type L interface {
	M(ctx context.Context)
	N() []T
	OK(kind, ids string)
}
type Named int
type Alias = T
type G[X any] struct{ X X }
type hidden struct{}

var V []int
var W string

func F1() time.Time
func F2(xs ...int)
func F3() (int, int)
func F4() (int, error)
func F5(h *hidden)
func F6(m map[string]string) error
func (t *T) Get(i int) T
func (t *T) Good(i int) *T
func (h *hidden) Whatever() []string
func OK(a string, b bool, c int64, d float64, e []byte, f *T, g L, h error) (*T, error)
func unexported() []string
`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "p.go", src, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(bindProblems(fset, []*ast.File{f}), "\n")
	for _, bad := range []string{"T.A ", "T.B ", "T.C ", "T.D ", "T.H ", "T.Duration", "L.M ", "L.N ", "Named", "Alias", "type G ", "var V", "func F1", "func F2", "func F3", "func F5", "func F6", "T.Get"} {
		if !strings.Contains(got, bad) {
			t.Errorf("not reported: %s", bad)
		}
	}
	for _, good := range []string{"T.E ", "T.F ", "T.G ", "T.I ", "hidden.Whatever", "L.OK", "var W", "func F4", "T.Good", "func OK", "unexported"} {
		if strings.Contains(got, good) {
			t.Errorf("reported, though bindable: %s", good)
		}
	}
	if t.Failed() {
		t.Log(got)
	}
}

// bindProblems lists the exported names of files whose types gobind cannot
// bind. Bindable, as gobind has it: string, bool, int, int8-int64,
// float32, float64, []byte, error, pointers to exported structs of the
// package, and exported interfaces of the package; a function returns
// nothing, one value, or one value and an error; no variadics, generics,
// aliases or named non-struct types.
func bindProblems(fset *token.FileSet, files []*ast.File) []string {
	b := &binder{fset: fset, structs: map[string]bool{}, ifaces: map[string]bool{}}
	for _, f := range files {
		for _, d := range f.Decls {
			if gd, ok := d.(*ast.GenDecl); ok && gd.Tok == token.TYPE {
				for _, s := range gd.Specs {
					ts := s.(*ast.TypeSpec)
					if !ts.Name.IsExported() || ts.TypeParams != nil || ts.Assign.IsValid() {
						continue
					}
					switch ts.Type.(type) {
					case *ast.StructType:
						b.structs[ts.Name.Name] = true
					case *ast.InterfaceType:
						b.ifaces[ts.Name.Name] = true
					}
				}
			}
		}
	}
	for _, f := range files {
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.GenDecl:
				b.genDecl(d)
			case *ast.FuncDecl:
				b.funcDecl(d)
			}
		}
	}
	return b.problems
}

type binder struct {
	fset     *token.FileSet
	structs  map[string]bool
	ifaces   map[string]bool
	problems []string
}

func (b *binder) report(n ast.Node, format string, args ...any) {
	b.problems = append(b.problems, fmt.Sprintf("%s: %s", b.fset.Position(n.Pos()), fmt.Sprintf(format, args...)))
}

func (b *binder) genDecl(d *ast.GenDecl) {
	for _, s := range d.Specs {
		switch s := s.(type) {
		case *ast.TypeSpec:
			b.typeSpec(s)
		case *ast.ValueSpec:
			if d.Tok != token.VAR {
				continue // constants are strings and numbers
			}
			for _, n := range s.Names {
				if n.IsExported() && (s.Type == nil || !b.ok(s.Type)) {
					b.report(n, "var %s: give it a bindable type", n.Name)
				}
			}
		}
	}
}

func (b *binder) typeSpec(s *ast.TypeSpec) {
	name := s.Name.Name
	if !s.Name.IsExported() {
		return
	}
	switch {
	case s.TypeParams != nil:
		b.report(s, "type %s is generic", name)
		return
	case s.Assign.IsValid():
		b.report(s, "type %s is an alias", name)
		return
	}
	switch t := s.Type.(type) {
	case *ast.StructType:
		for _, f := range t.Fields.List {
			if len(f.Names) == 0 {
				if embedded := typeName(f.Type); ast.IsExported(embedded) {
					b.report(f, "field %s.%s is embedded", name, embedded)
				}
				continue
			}
			for _, n := range f.Names {
				if n.IsExported() && !b.ok(f.Type) {
					b.report(n, "field %s.%s has type %s", name, n.Name, exprString(f.Type))
				}
			}
		}
	case *ast.InterfaceType:
		for _, m := range t.Methods.List {
			ft, isFunc := m.Type.(*ast.FuncType)
			if len(m.Names) == 0 || !isFunc {
				b.report(m, "interface %s embeds %s", name, exprString(m.Type))
				continue
			}
			for _, n := range m.Names {
				b.signature(n, name+"."+n.Name, ft)
			}
		}
	default:
		b.report(s, "type %s is %s: only structs and interfaces bind", name, exprString(s.Type))
	}
}

func (b *binder) funcDecl(d *ast.FuncDecl) {
	if !d.Name.IsExported() {
		return
	}
	name := "func " + d.Name.Name
	if d.Recv != nil {
		recv := typeName(d.Recv.List[0].Type)
		if !ast.IsExported(recv) {
			return
		}
		name = "method " + recv + "." + d.Name.Name
	}
	if d.Type.TypeParams != nil {
		b.report(d, "%s is generic", name)
		return
	}
	b.signature(d, name, d.Type)
}

func (b *binder) signature(n ast.Node, name string, ft *ast.FuncType) {
	for _, p := range ft.Params.List {
		if _, variadic := p.Type.(*ast.Ellipsis); variadic || !b.ok(p.Type) {
			b.report(n, "%s takes %s", name, exprString(p.Type))
		}
	}
	var results []ast.Expr
	if ft.Results != nil {
		for _, r := range ft.Results.List {
			for range max(len(r.Names), 1) {
				results = append(results, r.Type)
			}
		}
	}
	switch len(results) {
	case 0:
	case 1:
		if !b.ok(results[0]) {
			b.report(n, "%s returns %s", name, exprString(results[0]))
		}
	case 2:
		if !b.ok(results[0]) || typeName(results[1]) != "error" {
			b.report(n, "%s returns (%s, %s): only (T, error) binds", name, exprString(results[0]), exprString(results[1]))
		}
	default:
		b.report(n, "%s returns %d values", name, len(results))
	}
}

// ok reports whether gobind binds a value of type e.
func (b *binder) ok(e ast.Expr) bool {
	switch e := e.(type) {
	case *ast.Ident:
		switch e.Name {
		case "string", "bool", "int", "int8", "int16", "int32", "int64", "float32", "float64", "error":
			return true
		}
		return b.ifaces[e.Name]
	case *ast.ArrayType:
		return e.Len == nil && typeName(e.Elt) == "byte"
	case *ast.StarExpr:
		id, ok := e.X.(*ast.Ident)
		return ok && b.structs[id.Name]
	}
	return false
}

// exprString prints a type expression.
func exprString(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name
	case *ast.SelectorExpr:
		return exprString(e.X) + "." + e.Sel.Name
	case *ast.StarExpr:
		return "*" + exprString(e.X)
	case *ast.ArrayType:
		if e.Len == nil {
			return "[]" + exprString(e.Elt)
		}
		return "[...]" + exprString(e.Elt)
	case *ast.MapType:
		return "map[" + exprString(e.Key) + "]" + exprString(e.Value)
	case *ast.Ellipsis:
		return "..." + exprString(e.Elt)
	case *ast.FuncType:
		return "func(...)"
	case *ast.ChanType:
		return "chan " + exprString(e.Value)
	case *ast.InterfaceType:
		return "interface{...}"
	case *ast.StructType:
		return "struct{...}"
	}
	return fmt.Sprintf("%T", e)
}

// typeName is the name of a type, without a package or a pointer.
func typeName(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name
	case *ast.StarExpr:
		return typeName(e.X)
	case *ast.SelectorExpr:
		return e.Sel.Name
	case *ast.IndexExpr:
		return typeName(e.X)
	}
	return ""
}
