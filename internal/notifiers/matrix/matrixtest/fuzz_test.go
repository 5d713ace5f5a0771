package matrixtest

import "testing"

// FuzzCheckHTML: no formatted_body panics the check.
func FuzzCheckHTML(f *testing.F) {
	for _, s := range []string{"", "<b>x</b>", "<script>x</script>", "<a href=javascript:x>", "</i>", "<img src=mxc://a/b>",
		"<span data-mx-color=#zzzzzz>", "<!-- c -->", "<div><div>", "\x00<b\xff>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_ = CheckHTML(s)
	})
}
