package main

import (
	"encoding/hex"
	"fmt"
	"net"
	"strings"
)

// exampleKeyHashes are the SHA-256 (hex) of every team key that
// configs/example.yaml ships: the key it loads with no environment
// ("sk-demo") and the sha256: sample in its comments ("secret"). Anyone
// can read them, so they must not open a proxy that other machines can
// reach. TestExampleKeyHashesInSync keeps this list equal to the file.
var exampleKeyHashes = []string{
	"f77894fdfa58e447c57e077eaa9708e8e009c84dc6aba2db80461275e9b85be7", // sk-demo
	"2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b", // secret
}

// checkDemoKeys refuses a config that accepts a key published in
// configs/example.yaml while listening on an address other machines can
// reach, unless server.allow_demo_keys opts in. It runs after -listen has
// overridden server.listen. Loopback listeners are fine: the quickstart.
func checkDemoKeys(c *Config) error {
	if c.Server.AllowDemoKeys || loopbackListen(c.Server.Listen) {
		return nil
	}
	for ti, t := range c.Teams {
		for ki, k := range t.APIKeys {
			h, err := keyHash(k.Value())
			if err != nil {
				continue // newKeyring reports it
			}
			for _, ex := range exampleKeyHashes {
				if hex.EncodeToString(h[:]) == ex {
					return fmt.Errorf("teams[%d].api_keys[%d] (team %q) is a key published in configs/example.yaml, "+
						"and %q accepts connections from other machines: anyone could use this proxy and its upstream keys. "+
						"Set your own key (for the example config: LLMPROXY_DEMO_KEY), listen on 127.0.0.1, "+
						"or set server.allow_demo_keys: true if this is intended", ti, ki, t.Name, c.Server.Listen)
				}
			}
		}
	}
	return nil
}

// loopbackListen reports whether host:port only accepts connections from
// this machine. An empty host (":8080") listens on every interface.
func loopbackListen(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
