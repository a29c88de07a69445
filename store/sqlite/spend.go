package sqlite

import (
	"context"
	"fmt"
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
	q := `SELECT COALESCE(SUM(prompt_tokens + completion_tokens), 0), COALESCE(SUM(cost_usd), 0)
		FROM usage_ledger WHERE team = ? AND ts >= ? AND ts < ?`
	args := []any{sel.Team, from.UnixMicro(), to.UnixMicro()}
	if sel.KeyID != "" {
		q += ` AND key_id = ?`
		args = append(args, sel.KeyID)
	}
	if sel.Alias != "" {
		q += ` AND alias = ?`
		args = append(args, sel.Alias)
	}
	var (
		tokens int64
		cost   float64
	)
	if err := d.db.QueryRowContext(ctx, q, args...).Scan(&tokens, &cost); err != nil {
		return budget.Amount{}, fmt.Errorf("sqlite: period spend: %w", err)
	}
	return budget.Amount{Tokens: tokens, NanoUSD: budget.ToNano(cost)}, nil
}
