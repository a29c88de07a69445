package redis

// The budget scripts implement the same arithmetic as budget.Memory (see
// budget.fitCompletion). Time comes from the Redis server (TIME), so
// replicas with skewed clocks share one clock. Rate limits are token
// buckets holding a minute's worth, refilled continuously; TPM may go into
// debt (down to -tpm) so that one request larger than a minute's worth is
// served once and the average rate still holds.

// reserveLua: KEYS[1] reservation, KEYS[2..1+nb] buckets, then nl
// limiters. ARGV: ttl_ms, nb, nl, prompt_tok, prompt_nano, nano_per_tok,
// min, max, then per bucket limit_tok, limit_nano, period_end_unix, then
// per limiter rpm, tpm.
//
// Reply: {1, granted, charged_tok, charged_nano, per bucket spent_tok,
// spent_nano, per limiter rpm, rq_left, rq_reset_ms, tpm, tk_left,
// tk_reset_ms, then per bucket settled_tok, settled_nano}; {2|3, limiter,
// retry_ms, state...} for rpm|tpm refusals; {4, bucket} for a budget
// refusal; {5, buckets...} for buckets whose counter must first be
// rebuilt (when marker keys follow the limiters).
//
// Held charges: besides t and n (spend including reservations in flight)
// a bucket hash keeps rt and rn, what the reservations in flight charged.
// Reserve adds the charge, Settle takes it back; t - rt is the settled
// spend that budget shares and the remaining-budget header read. A bucket
// without rt (rebuilt, or from before these fields) has nothing in flight.
const reserveLua = `
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local nb, nl = tonumber(ARGV[2]), tonumber(ARGV[3])
local ptok, pnano, per = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local minc, maxc = tonumber(ARGV[7]), tonumber(ARGV[8])
-- Counters rebuilt from the usage ledger (budget_seed.go): with marker
-- keys after the limiters, a bucket whose marker is gone has lost its
-- counter; answer {5, buckets...} and charge nothing.
if #KEYS > 1 + nb + nl then
  local miss = {5}
  for i = 1, nb do
    if redis.call('EXISTS', KEYS[1 + nb + nl + i]) == 0 then miss[#miss + 1] = i end
  end
  if #miss > 1 then return miss end
end
local la = 9 + 3 * nb
local function state(rpm, rq, tpm, tk)
  local rr, tr = 0, 0
  if rpm > 0 then rr = math.ceil((rpm - math.max(rq, 0)) * 60000 / rpm) end
  if tpm > 0 then tr = math.ceil((tpm - tk) * 60000 / tpm) end
  return rpm, math.floor(rq), rr, tpm, math.floor(tk), tr
end
local need = ptok + minc
local rl = {}
for i = 1, nl do
  local k = KEYS[1 + nb + i]
  local rpm, tpm = tonumber(ARGV[la + 2 * (i - 1)]), tonumber(ARGV[la + 2 * (i - 1) + 1])
  local h = redis.call('HMGET', k, 'rq', 'rqt', 'tk', 'tkt')
  local rq, tk = rpm, tpm
  if h[1] then rq = math.min(rpm, tonumber(h[1]) + math.max(now - tonumber(h[2]), 0) * rpm / 60) end
  if h[3] then tk = math.min(tpm, tonumber(h[3]) + math.max(now - tonumber(h[4]), 0) * tpm / 60) end
  if rpm > 0 and rq < 1 then
    return {2, i, math.ceil((1 - rq) * 60000 / rpm), state(rpm, rq, tpm, tk)}
  end
  if tpm > 0 then
    local w = math.min(need, tpm)
    if tk < w then
      return {3, i, math.ceil((w - tk) * 60000 / tpm), state(rpm, rq, tpm, tk)}
    end
  end
  rl[i] = {k, rpm, tpm, rq, tk}
end
local n = maxc
for i = 1, nb do
  local lt, ln = tonumber(ARGV[9 + 3 * (i - 1)]), tonumber(ARGV[10 + 3 * (i - 1)])
  local h = redis.call('HMGET', KEYS[1 + i], 't', 'n')
  local st, sn = tonumber(h[1]) or 0, tonumber(h[2]) or 0
  if lt > 0 then n = math.min(n, lt - st - ptok) end
  if ln > 0 then
    local left = ln - sn - pnano
    if left < 0 then n = -1 elseif per > 0 then n = math.min(n, math.floor(left / per)) end
  end
  if n < minc then return {4, i} end
end
local ctok = ptok + n
local cnano = pnano + math.ceil(n * per)
local out = {1, n, ctok, cnano}
for i = 1, nb do
  local k = KEYS[1 + i]
  out[#out + 1] = redis.call('HINCRBY', k, 't', ctok)
  out[#out + 1] = redis.call('HINCRBY', k, 'n', cnano)
  redis.call('EXPIREAT', k, tonumber(ARGV[11 + 3 * (i - 1)]) + 86400)
end
local held = {}
for i = 1, nb do
  local k = KEYS[1 + i]
  held[i] = {redis.call('HINCRBY', k, 'rt', ctok), redis.call('HINCRBY', k, 'rn', cnano)}
end
for i = 1, nl do
  local k, rpm, tpm, rq, tk = rl[i][1], rl[i][2], rl[i][3], rl[i][4], rl[i][5]
  if rpm > 0 then rq = rq - 1 end
  if tpm > 0 then tk = math.max(tk - ctok, -tpm) end
  redis.call('HSET', k, 'rq', rq, 'rqt', now, 'tk', tk, 'tkt', now)
  redis.call('PEXPIRE', k, 120000)
  local a, b, c, d, e, f = state(rpm, rq, tpm, tk)
  out[#out + 1] = a; out[#out + 1] = b; out[#out + 1] = c
  out[#out + 1] = d; out[#out + 1] = e; out[#out + 1] = f
end
for i = 1, nb do
  out[#out + 1] = out[3 + 2 * i] - math.max(held[i][1], 0)
  out[#out + 1] = out[4 + 2 * i] - math.max(held[i][2], 0)
end
redis.call('SET', KEYS[1], cjson.encode({ctok, cnano}), 'PX', ARGV[1])
return out
`

// settleLua: KEYS as reserveLua. ARGV: nb, nl, actual_tok, actual_nano,
// then per limiter tpm. Replaces the charge by the actual usage and
// refunds unused TPM; a missing reservation (settled or expired) is a
// no-op.
const settleLua = `
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
redis.call('DEL', KEYS[1])
local r = cjson.decode(v)
local nb, nl = tonumber(ARGV[1]), tonumber(ARGV[2])
local atok, anano = tonumber(ARGV[3]), tonumber(ARGV[4])
local dt, dn = atok - r[1], anano - r[2]
for i = 1, nb do
  local k = KEYS[1 + i]
  if redis.call('EXISTS', k) == 1 then
    redis.call('HINCRBY', k, 't', dt)
    redis.call('HINCRBY', k, 'n', dn)
    redis.call('HINCRBY', k, 'rt', -r[1])
    redis.call('HINCRBY', k, 'rn', -r[2])
  end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
for i = 1, nl do
  local tpm = tonumber(ARGV[4 + i])
  local k = KEYS[1 + nb + i]
  if tpm > 0 then
    local h = redis.call('HMGET', k, 'tk', 'tkt')
    if h[1] then
      local tk = math.min(tpm, tonumber(h[1]) + math.max(now - tonumber(h[2]), 0) * tpm / 60)
      tk = math.max(math.min(tk - dt, tpm), -tpm)
      redis.call('HSET', k, 'tk', tk, 'tkt', now)
    end
  end
end
return 1
`
