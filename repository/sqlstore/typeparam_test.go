package sqlstore

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strings"
	"testing"
)

// TestTypeParamsHideNoType: no type parameter of a function of the package
// is named as a type of the package, which it would hide in the function
// and make its documentation read wrong.
func TestTypeParamsHideNoType(t *testing.T) {
	fset := token.NewFileSet()
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	types := map[string]bool{}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, e.Name(), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
		for _, d := range f.Decls {
			if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.TYPE {
				for _, s := range g.Specs {
					types[s.(*ast.TypeSpec).Name.Name] = true
				}
			}
		}
	}
	for _, f := range files {
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Type.TypeParams == nil {
				continue
			}
			for _, p := range fd.Type.TypeParams.List {
				for _, n := range p.Names {
					if types[n.Name] {
						t.Errorf("%s: type parameter %s of %s hides the type %s", fset.Position(n.Pos()), n.Name, fd.Name.Name, n.Name)
					}
				}
			}
		}
	}
}
