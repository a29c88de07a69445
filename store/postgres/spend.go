package postgres

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"llmproxy/budget"
)

var _ budget.SpendSource = (*DB)(nil)

// PeriodSpend implements budget.SpendSource: the tokens (prompt plus
// completion) and cost of sel's rows in [from, to), which the usage_ledger
// (team, ts) index finds. Cost is summed in dollars and rounded up to
// nano-dollars once, so it may lie below the guard's per-request rounding
// by at most one nano-dollar per row.
func (d *DB) PeriodSpend(ctx context.Context, sel budget.SpendSelector, from, to time.Time) (budget.Amount, error) {
	q := `SELECT COALESCE(sum(prompt_tokens::bigint + completion_tokens::bigint), 0)::bigint,
		COALESCE(sum(cost_usd), 0)::double precision
		FROM usage_ledger WHERE team = $1 AND ts >= $2 AND ts < $3`
	args := []any{sel.Team, from.UTC(), to.UTC()}
	if sel.KeyID != "" {
		args = append(args, sel.KeyID)
		q += ` AND key_id = $` + strconv.Itoa(len(args))
	}
	if sel.Alias != "" {
		args = append(args, sel.Alias)
		q += ` AND alias = $` + strconv.Itoa(len(args))
	}
	var (
		tokens int64
		cost   float64
	)
	if err := d.pool.QueryRow(ctx, q, args...).Scan(&tokens, &cost); err != nil {
		return budget.Amount{}, fmt.Errorf("postgres: period spend: %w", err)
	}
	return budget.Amount{Tokens: tokens, NanoUSD: budget.ToNano(cost)}, nil
}
