package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"testing"
)

// FuzzApply checks that no layer, however malformed, writes outside root.
func FuzzApply(f *testing.F) {
	sym := func(name, target string) ent { return ent{name: name, typ: tar.TypeSymlink, link: target} }
	seeds := [][]ent{
		{{name: "a/b", body: "x"}, {name: "a/.wh.b"}, {name: "a/.wh..wh..opq"}},
		{sym("evil", "../sentinel"), {name: "evil/keep", body: "pwned"}},
		{sym("evil", "/"), {name: "evil/tmp/pwned", body: "pwned"}},
		{sym("up", ".."), {name: "up/sentinel/.wh.keep"}},
		{sym("s", "../sentinel/keep"), {name: "h", typ: tar.TypeLink, link: "s"}, {name: "s", body: "y"}},
		{{name: "../sentinel/keep", body: "pwned"}},
		{{name: "d/", typ: tar.TypeDir}, sym("d/x", "../../sentinel"), {name: "d/x/.wh..wh..opq"}},
		{{name: "h", typ: tar.TypeLink, link: "../sentinel/keep"}},
		{{name: "d/", typ: tar.TypeDir}, {name: "d/f", body: "x"}, sym("d", "../sentinel"), {name: "d/keep", body: "pwned"}},
		{{name: "d/f", body: "x"}, sym("d", "/"), {name: "d/tmp/pwned", body: "pwned"}},
	}
	for _, s := range seeds {
		data := layer(f, s...)
		f.Add(data, false, false)
		f.Add(data, true, false)
		f.Add(data, false, true)
	}
	f.Fuzz(func(t *testing.T, data []byte, overlay, noOpenat2 bool) {
		requireRoot(t)
		j := newJail(t)
		opts := ApplyOptions{NoDevices: true}
		if overlay {
			opts.Mode = WhiteoutOverlay
		}
		_, _ = applyTar(context.Background(), j.root, bytes.NewReader(data), opts, noOpenat2)
		j.assertUntouched(t)
	})
}
