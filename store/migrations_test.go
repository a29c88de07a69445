package store

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestMigrations(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	tests := []struct {
		name    string
		fsys    fstest.MapFS
		want    []int // versions in order
		wantErr string
	}{
		{"ordered by version", fstest.MapFS{
			"migrations/0010_b.sql": file("B"), "migrations/0002_a.sql": file("A"), "migrations/README": file("x"),
		}, []int{2, 10}, ""},
		{"no version", fstest.MapFS{"migrations/keys.sql": file("")}, nil, "must start with a positive version"},
		{"zero version", fstest.MapFS{"migrations/0000_x.sql": file("")}, nil, "must start with a positive version"},
		{"shared version", fstest.MapFS{"migrations/0001_a.sql": file(""), "migrations/01_b.sql": file("")}, nil, "share a version"},
		{"none", fstest.MapFS{}, []int{}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ms, err := Migrations(tc.fsys)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Migrations() error = %v; want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Migrations() error = %v", err)
			}
			if len(ms) != len(tc.want) {
				t.Fatalf("Migrations() = %d files; want %d", len(ms), len(tc.want))
			}
			for i, m := range ms {
				if m.Version != tc.want[i] {
					t.Errorf("Migrations()[%d].Version = %d; want %d", i, m.Version, tc.want[i])
				}
			}
			if len(ms) == 2 && (ms[0].SQL != "A" || ms[1].Name != "0010_b.sql") {
				t.Errorf("Migrations() = %+v; want A then 0010_b.sql", ms)
			}
		})
	}
}
