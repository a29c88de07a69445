package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/gofiber/fiber/v2"

	"llmproxy/ledger"
	"llmproxy/router"
)

// usageDate is the date format of the usage endpoints (UTC days).
const usageDate = "2006-01-02"

// maxUsageDays bounds one report's range.
const maxUsageDays = 366

// usageReport is the body of GET /v1/usage (one team) and GET
// /admin/usage (every team; Team and Budget are then omitted and Teams is
// set).
type usageReport struct {
	Object string `json:"object"` // "usage.report"
	Team   string `json:"team,omitempty"`
	// Start and End are the inclusive UTC dates covered.
	Start  string        `json:"start"`
	End    string        `json:"end"`
	Totals usageTotals   `json:"totals"`
	Budget *budgetView   `json:"budget,omitempty"`
	Teams  []teamTotals  `json:"teams,omitempty"`
	Data   []usageBucket `json:"data"`
}

// usageTotals are summed counts; a bucket, a team or the whole report.
type usageTotals struct {
	Requests          int64   `json:"requests"`
	FailedRequests    int64   `json:"failed_requests"`
	EstimatedRequests int64   `json:"estimated_requests"`
	PromptTokens      int64   `json:"prompt_tokens"`
	CompletionTokens  int64   `json:"completion_tokens"`
	TotalTokens       int64   `json:"total_tokens"`
	CachedTokens      int64   `json:"cached_tokens"`
	ReasoningTokens   int64   `json:"reasoning_tokens"`
	CostUSD           float64 `json:"cost_usd"`
}

// usageBucket is one UTC day of one model alias (and one team in the
// admin report).
type usageBucket struct {
	Date  string `json:"date"`
	Team  string `json:"team,omitempty"`
	Model string `json:"model"`
	usageTotals
}

// teamTotals is one team's line in the admin report.
type teamTotals struct {
	Team   string      `json:"team"`
	Totals usageTotals `json:"totals"`
	Budget *budgetView `json:"budget"`
}

// budgetView is a team's budget in its current period, from the budget
// guard (spend includes reservations in flight). A dimension without a
// limit has null limit, spent and remaining.
type budgetView struct {
	Period          string    `json:"period"`
	PeriodStart     time.Time `json:"period_start"`
	ResetsAt        time.Time `json:"resets_at"`
	USDLimit        *float64  `json:"usd_limit"`
	USDSpent        *float64  `json:"usd_spent"`
	USDRemaining    *float64  `json:"usd_remaining"`
	TokensLimit     *int64    `json:"tokens_limit"`
	TokensSpent     *int64    `json:"tokens_spent"`
	TokensRemaining *int64    `json:"tokens_remaining"`
}

// budgetStatus is the team's budget, or nil ("budget": null) when there is
// no guard, the team has no budget, or the guard's store did not answer.
func (s *Server) budgetStatus(ctx context.Context, team string) *budgetView {
	if s.usage == nil || s.usage.status == nil {
		return nil
	}
	st, err := s.usage.status(ctx, team)
	if err != nil {
		s.log.WarnContext(ctx, "usage report without budget status", slog.String("team", team), slog.Any("err", err))
		return nil
	}
	if !st.HasBudget {
		return nil
	}
	v := &budgetView{Period: string(st.Period), PeriodStart: st.Start.UTC(), ResetsAt: st.Reset.UTC()}
	if st.LimitUSD > 0 {
		v.USDLimit, v.USDSpent, v.USDRemaining = &st.LimitUSD, &st.SpentUSD, &st.RemainingUSD
	}
	if st.LimitTokens > 0 {
		v.TokensLimit, v.TokensSpent, v.TokensRemaining = &st.LimitTokens, &st.SpentTokens, &st.RemainingTokens
	}
	return v
}

// usageHandler is GET /v1/usage: the calling team's own usage.
func (s *Server) usageHandler(c *fiber.Ctx) error {
	k := c.Locals(localsKey).(*teamKey)
	rep, err := s.usageReport(c, k.team)
	if err != nil {
		return err
	}
	rep.Team = k.team
	rep.Budget = s.budgetStatus(c.UserContext(), k.team)
	if rep.Budget == nil {
		// The field is always present for a team, null when unknown.
		return c.JSON(struct {
			*usageReport
			Budget *budgetView `json:"budget"`
		}{rep, nil})
	}
	return c.JSON(rep)
}

// adminUsage is GET /admin/usage: every team, behind server.master_key.
// Without a master key the route does not exist.
func (s *Server) adminUsage(c *fiber.Ctx) error {
	if err := s.master.check(c.Request().Header.Peek(fiber.HeaderAuthorization)); err != nil {
		return err
	}
	rep, err := s.usageReport(c, "")
	if err != nil {
		return err
	}
	rep.Teams = []teamTotals{}
	idx := map[string]int{}
	for _, b := range rep.Data {
		i, ok := idx[b.Team]
		if !ok {
			i = len(rep.Teams)
			idx[b.Team] = i
			rep.Teams = append(rep.Teams, teamTotals{Team: b.Team, Budget: s.budgetStatus(c.UserContext(), b.Team)})
		}
		rep.Teams[i].Totals.add(b.usageTotals)
	}
	return c.JSON(rep)
}

// usageReport runs the query for team ("" for all) over the request's
// start and end dates.
func (s *Server) usageReport(c *fiber.Ctx, team string) (*usageReport, error) {
	if s.usage == nil {
		return nil, &router.Error{Kind: router.KindNoProvider, Message: "The usage ledger is not configured."}
	}
	from, to, err := usageRange(c.Query("start"), c.Query("end"), time.Now().UTC())
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), 10*time.Second)
	defer cancel()
	rows, err := s.usage.report.Usage(ctx, ledger.Filter{Team: team, From: from, To: to.AddDate(0, 0, 1)})
	if isUnavailable(err) {
		return nil, &router.Error{Kind: router.KindNoProvider, Message: "The usage database is unavailable; try again shortly.",
			RetryAfter: 5 * time.Second, Err: err}
	}
	if err != nil {
		return nil, &router.Error{Kind: router.KindInternal, Err: err}
	}
	rep := &usageReport{Object: "usage.report", Start: from.Format(usageDate), End: to.Format(usageDate), Data: make([]usageBucket, 0, len(rows))}
	for _, r := range rows {
		t := usageTotals{Requests: r.Requests, FailedRequests: r.Failed, EstimatedRequests: r.Estimated,
			PromptTokens: r.PromptTokens, CompletionTokens: r.CompletionTokens, TotalTokens: r.PromptTokens + r.CompletionTokens,
			CachedTokens: r.CachedTokens, ReasoningTokens: r.ReasoningTokens, CostUSD: r.CostUSD}
		b := usageBucket{Date: r.Day, Model: r.Alias, usageTotals: t}
		if team == "" {
			b.Team = r.Team
		}
		rep.Data = append(rep.Data, b)
		rep.Totals.add(t)
	}
	return rep, nil
}

func (t *usageTotals) add(o usageTotals) {
	t.Requests += o.Requests
	t.FailedRequests += o.FailedRequests
	t.EstimatedRequests += o.EstimatedRequests
	t.PromptTokens += o.PromptTokens
	t.CompletionTokens += o.CompletionTokens
	t.TotalTokens += o.TotalTokens
	t.CachedTokens += o.CachedTokens
	t.ReasoningTokens += o.ReasoningTokens
	t.CostUSD += o.CostUSD
}

// usageRange parses the inclusive start and end dates; either defaults to
// the current UTC month's first or last day.
func usageRange(start, end string, now time.Time) (from, to time.Time, err error) {
	monthStart := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	from, to = monthStart, monthStart.AddDate(0, 1, -1)
	if start != "" {
		if from, err = time.Parse(usageDate, start); err != nil {
			return from, to, usageParamError("start", "Invalid 'start': \""+start+"\" is not a date; want YYYY-MM-DD.")
		}
	}
	if end != "" {
		if to, err = time.Parse(usageDate, end); err != nil {
			return from, to, usageParamError("end", "Invalid 'end': \""+end+"\" is not a date; want YYYY-MM-DD.")
		}
	}
	switch {
	case to.Before(from):
		return from, to, usageParamError("end", "Invalid 'end': it is before 'start'.")
	case to.Sub(from) >= maxUsageDays*24*time.Hour:
		return from, to, usageParamError("end", "Invalid range: at most 366 days per report.")
	}
	return from, to, nil
}

func usageParamError(param, msg string) *router.Error {
	return &router.Error{Kind: router.KindInvalidRequest, Param: param, Message: msg}
}
