package schema

import "testing"

func TestMarshalSerdeCompatible(t *testing.T) {
	type inner struct {
		A string   `json:"a"`
		B []string `json:"b"`
	}
	cases := []struct {
		in      any
		compact string
		pretty  string
	}{
		{inner{A: "<&>", B: []string{}}, `{"a":"<&>","b":[]}`, "{\n  \"a\": \"<&>\",\n  \"b\": []\n}"},
		{inner{A: "x\u2028y\u2029z", B: []string{"\\u2028"}}, "{\"a\":\"x\u2028y\u2029z\",\"b\":[\"\\\\u2028\"]}", "{\n  \"a\": \"x\u2028y\u2029z\",\n  \"b\": [\n    \"\\\\u2028\"\n  ]\n}"},
		{inner{A: "\b\f\n\r\t\x01\x1f\"\\/é", B: []string{"a"}}, `{"a":"\b\f\n\r\t\u0001\u001f\"\\/é","b":["a"]}`, "{\n  \"a\": \"\\b\\f\\n\\r\\t\\u0001\\u001f\\\"\\\\/é\",\n  \"b\": [\n    \"a\"\n  ]\n}"},
		{map[string]any{}, `{}`, `{}`},
	}
	for _, c := range cases {
		got, err := MarshalCompact(c.in)
		if err != nil || string(got) != c.compact {
			t.Errorf("compact(%#v) = %q, %v; want %q", c.in, got, err, c.compact)
		}
		got, err = MarshalPretty(c.in)
		if err != nil || string(got) != c.pretty {
			t.Errorf("pretty(%#v) = %q, %v; want %q", c.in, got, err, c.pretty)
		}
	}
}
