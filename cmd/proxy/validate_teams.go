package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// hashedKeyPrefix marks a team key written as its SHA-256 instead of itself.
const hashedKeyPrefix = "sha256:"

// apiKeyDigest is the SHA-256 a team key is looked up by: the hash of the key
// itself, or the 64 hex digits of a "sha256:<hex>" entry. A key and its
// sha256 form give the same digest, so they count as duplicates. Its errors
// never contain the key.
func apiKeyDigest(k Secret) ([sha256.Size]byte, error) {
	var d [sha256.Size]byte
	s := k.Value()
	switch {
	case s == "":
		return d, errors.New("empty key")
	case strings.TrimSpace(s) != s:
		return d, errors.New("key has leading or trailing whitespace (often a newline from a file or env var)")
	case strings.HasPrefix(s, hashedKeyPrefix):
		h := s[len(hashedKeyPrefix):]
		if len(h) != 2*sha256.Size {
			return d, fmt.Errorf("want %q followed by 64 hex digits, got %d characters after it", hashedKeyPrefix, len(h))
		}
		if _, err := hex.Decode(d[:], []byte(h)); err != nil {
			return d, fmt.Errorf("want %q followed by 64 hex digits (0-9, a-f); found another character", hashedKeyPrefix)
		}
		return d, nil
	}
	return sha256.Sum256([]byte(s)), nil
}

func (v *validator) teams() {
	models := v.c.modelIndex()
	seen := map[string]string{}
	keys := map[[sha256.Size]byte]string{}
	for i, t := range v.c.Teams {
		path := fmt.Sprintf("teams[%d]", i)
		v.name(path+".name", "team", t.Name, seen)
		if len(t.APIKeys) == 0 {
			v.add(path+".api_keys", "at least one key is required")
		}
		for j, k := range t.APIKeys {
			kp := fmt.Sprintf("%s.api_keys[%d]", path, j)
			d, err := apiKeyDigest(k)
			switch {
			case err != nil:
				v.add(kp, "%v", err)
			case keys[d] != "":
				v.add(kp, "duplicate key (same as %s); every key must be unique across teams", keys[d])
			default:
				keys[d] = kp
			}
		}
		for j, m := range t.Models {
			if _, ok := models[m]; !ok {
				v.add(fmt.Sprintf("%s.models[%d]", path, j), "unknown model %q", m)
			}
		}
		v.rateLimit(path+".rate_limit", t.RateLimit)
		v.budgetLimit(path+".budget", t.Budget)
		v.budgetLimit(path+".key_budget", t.KeyBudget)
		v.rateLimit(path+".key_rate_limit", t.KeyRateLimit)
		for _, m := range slices.Sorted(maps.Keys(t.ModelBudgets)) {
			mb := t.ModelBudgets[m]
			if _, ok := models[m]; !ok {
				v.add(path+".model_budgets."+m, "unknown model %q", m)
			}
			v.budgetLimit(path+".model_budgets."+m, &mb)
		}
		for j, r := range t.Downgrade {
			v.downgrade(fmt.Sprintf("%s.downgrade[%d]", path, j), r, t, models)
		}
		v.oneOf(path+".downgrade_policy", "downgrade policy", t.DowngradePolicy, downgradePolicys)
	}
}

func (v *validator) budgetLimit(path string, b *BudgetLimit) {
	if b == nil {
		return
	}
	v.notNegative(path+".usd", b.USD)
	v.notNegative(path+".tokens", float64(b.Tokens))
	if b.USD == 0 && b.Tokens == 0 {
		v.add(path, "no limit; set usd, tokens or both")
	}
	if b.Period == "" {
		v.add(path+".period", "required%s", wantOneOf(budgetPeriods))
	} else {
		v.oneOf(path+".period", "period", b.Period, budgetPeriods)
	}
}

func (v *validator) downgrade(path string, r DowngradeRule, t TeamConfig, models map[string]int) {
	switch _, ok := models[r.To]; {
	case r.To == "":
		v.add(path+".to", "required: the model to downgrade to")
	case !ok:
		v.add(path+".to", "unknown model %q", r.To)
	case r.To == r.From:
		v.add(path+".to", "%q is the same as from", r.To)
	case len(t.Models) > 0 && !slices.Contains(t.Models, r.To):
		// A downgrade must not hand the team a model its allow-list hides.
		v.add(path+".to", "%q is not in team %q's models allow-list", r.To, t.Name)
	}
	if _, ok := models[r.From]; r.From != "" && !ok {
		v.add(path+".from", "unknown model %q", r.From)
	}
	switch a := r.AtBudgetUsed; {
	case a < 0 || a > 1:
		v.add(path+".at_budget_used", "%v is out of range; want a share of the budget in (0, 1], e.g. 0.8", a)
	case a > 0 && t.Budget == nil:
		v.add(path+".at_budget_used", "team %q has no budget to measure against; add teams[].budget", t.Name)
	}
	v.notNegative(path+".max_prompt_tokens", float64(r.MaxPromptTokens))
	if r.AtBudgetUsed == 0 && r.MaxPromptTokens == 0 && !r.NoTools {
		v.add(path, "no trigger; set at_budget_used, max_prompt_tokens or no_tools")
	}
}

// Warnings lists what loads but will not work as the operator may expect.
// main logs each one at Warn after a successful load.
func (c *Config) Warnings() []string {
	var out []string
	for i, p := range c.Providers {
		if p.APIKey == "" && p.Type != "demo" {
			out = append(out, fmt.Sprintf("providers[%d] %q: api_key is empty; requests to it will fail with 502", i, p.Name))
		}
	}
	if len(c.Teams) == 0 {
		out = append(out, "teams: none configured; every request will be rejected with 401")
	}
	if c.Budget.Unpriced == "deny" {
		for i, m := range c.Models {
			if m.Pricing == nil && !allDeploymentsPriced(m) {
				out = append(out, fmt.Sprintf("models[%d] %q: no pricing and budget.unpriced is deny; requests to it will be refused", i, m.Name))
			}
		}
	}
	return out
}

func allDeploymentsPriced(m ModelConfig) bool {
	for _, d := range m.Deployments {
		if d.Pricing == nil {
			return false
		}
	}
	return len(m.Deployments) > 0
}
