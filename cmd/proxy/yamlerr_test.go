package main

import "testing"

// FuzzParseConfig: no config text makes loading (and the decode error's
// path search) panic.
func FuzzParseConfig(f *testing.F) {
	f.Add(validBase)
	f.Add("server:\n  max_body_bytes: lots\n" + validBase)
	f.Add("models: 3\n")
	f.Add("teams:\n  - name: t\n    api_keys: sk-x\n")
	f.Add("server: {drain_timeout: 5, shutdown_delay: [1]}\n")
	f.Add("a: &x {b: *x}\n")
	f.Fuzz(func(t *testing.T, src string) {
		_, _ = ParseConfig([]byte(src), cfgEnv(map[string]string{"BIG": "huge"}))
	})
}
