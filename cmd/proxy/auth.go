package main

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"strings"
)

// teamKey is one accepted API key: only its SHA-256 is kept in memory.
type teamKey struct {
	hash [32]byte
	// id is "key_" plus the first 8 hex digits of the hash: safe to log.
	id   string
	team string
	// allowed is the team's model allow-list; nil allows every model.
	allowed map[string]bool
}

func (k *teamKey) allows(model string) bool { return k.allowed == nil || k.allowed[model] }

// keyring finds the team of a bearer token by its hash, so the plaintext is
// never stored and the final comparison is constant time.
type keyring struct {
	byHash map[[32]byte]*teamKey
}

// newKeyring hashes every team key. Keys written as "sha256:<hex>" are
// already hashed (operators can keep plaintext out of the YAML entirely).
func newKeyring(teams []TeamConfig) (*keyring, error) {
	kr := &keyring{byHash: make(map[[32]byte]*teamKey)}
	for ti, t := range teams {
		var allowed map[string]bool
		if len(t.Models) > 0 {
			allowed = make(map[string]bool, len(t.Models))
			for _, m := range t.Models {
				allowed[m] = true
			}
		}
		for ki, s := range t.APIKeys {
			h, err := keyHash(s.Value())
			if err != nil {
				return nil, fmt.Errorf("teams[%d].api_keys[%d]: %w", ti, ki, err)
			}
			if _, dup := kr.byHash[h]; dup {
				return nil, fmt.Errorf("teams[%d].api_keys[%d]: key is used twice", ti, ki)
			}
			kr.byHash[h] = &teamKey{hash: h, id: "key_" + hex.EncodeToString(h[:4]), team: t.Name, allowed: allowed}
		}
	}
	return kr, nil
}

func keyHash(v string) ([32]byte, error) {
	var h [32]byte
	if hexPart, ok := strings.CutPrefix(v, "sha256:"); ok {
		b, err := hex.DecodeString(hexPart)
		if err != nil || len(b) != 32 {
			return h, fmt.Errorf("sha256: form needs 64 hex digits")
		}
		copy(h[:], b)
		return h, nil
	}
	if v == "" {
		return h, fmt.Errorf("empty key")
	}
	return sha256.Sum256([]byte(v)), nil
}

var bearer = []byte("bearer ")

// lookup returns the key for an Authorization header value.
func (kr *keyring) lookup(auth []byte) (*teamKey, bool) {
	if len(auth) <= len(bearer) || !bytes.EqualFold(auth[:len(bearer)], bearer) {
		return nil, false
	}
	tok := bytes.TrimSpace(auth[len(bearer):])
	if len(tok) == 0 {
		return nil, false
	}
	h := sha256.Sum256(tok)
	k, ok := kr.byHash[h]
	if !ok || subtle.ConstantTimeCompare(k.hash[:], h[:]) != 1 {
		return nil, false
	}
	return k, true
}
