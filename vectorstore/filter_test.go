package vectorstore_test

import (
	"encoding/json"
	"strings"
	"testing"

	"llmproxy/vectorstore"
	"llmproxy/vectorstore/vectorstoretest"
)

func TestFilterMatch(t *testing.T) {
	for _, tc := range vectorstoretest.FilterCases {
		f, err := vectorstore.ParseFilter(json.RawMessage(tc.Filter))
		if err != nil {
			t.Fatalf("vectorstore.ParseFilter(%s): %v", tc.Filter, err)
		}
		for _, want := range []bool{true, false} {
			sets := tc.Pass
			if !want {
				sets = tc.Fail
			}
			for _, s := range sets {
				var attrs map[string]any
				if err := json.Unmarshal([]byte(s), &attrs); err != nil {
					t.Fatal(err)
				}
				if got := f.Match(attrs); got != want {
					t.Errorf("%s .Match(%s) = %v; want %v", tc.Filter, s, got, want)
				}
			}
		}
	}
	var nilFilter *vectorstore.Filter
	if !nilFilter.Match(nil) {
		t.Error("a nil filter must pass everything")
	}
}

func TestParseFilterErrors(t *testing.T) {
	deep := strings.Repeat(`{"type":"and","filters":[`, 10) + `{"type":"eq","key":"a","value":1}` + strings.Repeat(`]}`, 10)
	for _, tc := range []struct{ in, want string }{
		{`{"type":"like","key":"a","value":"x"}`, "is not one of"},
		{`{"type":"eq","value":"x"}`, "needs a key"},
		{`{"type":"eq","key":"a"}`, "needs a value"},
		{`{"type":"gt","key":"a","value":true}`, "not booleans"},
		{`{"type":"eq","key":"a","value":{"x":1}}`, "string, number or boolean"},
		{`{"type":"in","key":"a","value":[]}`, "non-empty list"},
		{`{"type":"in","key":"a","value":"x"}`, "non-empty list"},
		{`{"type":"in","key":"a","value":[true]}`, "strings or numbers"},
		{`{"type":"and","filters":[]}`, "non-empty filters"},
		{`{"type":"or"}`, "non-empty filters"},
		{`[1]`, "must be an object"},
		{deep, "nest deeper"},
	} {
		_, err := vectorstore.ParseFilter(json.RawMessage(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("vectorstore.ParseFilter(%s) = %v; want an error with %q", tc.in, err, tc.want)
		}
	}
}

func FuzzParseFilter(f *testing.F) {
	for _, tc := range vectorstoretest.FilterCases {
		f.Add([]byte(tc.Filter))
	}
	f.Add([]byte(`{"type":"in","key":"a","value":[1,"x"]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		flt, err := vectorstore.ParseFilter(b)
		if err != nil {
			return
		}
		flt.Match(map[string]any{"a": 1.0, "b": "x", "c": true})
		flt.Match(nil)
	})
}
