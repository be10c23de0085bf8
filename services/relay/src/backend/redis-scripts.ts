/**
 * Lua scripts of the Redis backend: the mailbox and the envelope's life
 * (accept, ack, the two halves of an expiry, a forward's outcome), chunk
 * ownership and garbage collection. Each state change that touches several
 * keys is one script, because Redis runs a script atomically: a crash or a
 * concurrent instance sees all of it or none of it. Scheduling (when a
 * forward or the expiry sweep runs, retries, leases) is BullMQ's; the one
 * exception is the `due` set below, which says which mailbox items the
 * sweep takes (and keeps one an instance is expiring from the others).
 *
 * Every script gets the namespace key base as ARGV[1] (`{prefix}:`) and
 * one key of the namespace as KEYS[1], so a cluster client routes it to
 * the slot that holds all of the namespace (the `{prefix}` hash tag).
 *
 * Key layout (K = `{prefix}:`):
 *   env:<id>          hash   the stored envelope (+ doneAt, releasedAt)
 *   envs              set    ids of stored envelopes (stats)
 *   parties:<id>      set    sender and recipients (chunk visibility)
 *   open:<id>         set    unfinished work: `d:<address>` deliveries, `f:<task id>` forwards
 *   done              zset   envelope id -> doneAt, chunks not released yet
 *   released          zset   envelope id -> retainUntil, chunks released
 *   chunk:<chunk id>  set    envelope ids that still hold the chunk
 *   uploads           zset   `<chunk id>|<uploader>` -> last upload time (a bare chunk id: written before uploaders were recorded)
 *   own:<chunk id>    hash   uploader -> size (pending) or `r<size>` (referenced since): upload records (chunk ownership)
 *   usage             hash   `p:<identity>` -> pending bytes, `r:<identity>` -> referenced bytes (quotas)
 *   seq:<address>     string mailbox sequence counter
 *   mb:<address>      zset   unacked item seqs (score = member = seq)
 *   item:<address>:<seq> hash kind, env, key / payload / deliverBy, state, attempt
 *   due               zset   `<seq>:<address>` of every unacked envelope item -> when the expiry
 *                            sweep takes it: deliverBy; once taken, the end of the taker's lease,
 *                            then the time of its retry if expired() failed
 *   dedup:<address>   hash   evidence dedup key -> seq
 *   mbcount           string unacked items in all mailboxes (stats)
 *   task:<id>         hash   forward task (state pending | done | gave_up)
 *   forwarding        string forward tasks not finished (stats)
 *   unqueued          set    forward jobs committed work needs whose add to BullMQ is not confirmed:
 *                            `f:<task id>` (`x:<seq>:<address>`: an expiry job of an earlier relay, adopted)
 *   tombdedup:<id>    list   address, key pairs to forget with the envelope record
 *   tombtask:<id>     list   finished task ids to forget with the envelope record
 *   claim:<key>       string with a TTL
 *   epoch             string the mailbox epoch: a random id set by the first MAILBOX_EPOCH (or by an import)
 *   channel `mailbox` pub/sub, message = address
 */

const PRELUDE = `
local K = ARGV[1]
local function envKey(id) return K .. 'env:' .. id end
local function itemKey(address, seq) return K .. 'item:' .. address .. ':' .. seq end
local function dueMember(address, seq) return seq .. ':' .. address end
-- An upload record: its size, and whether an envelope referenced it since its last upload.
-- (Amounts subtracted are written 0 - x: in Lua, -0 is a float that Redis refuses as an integer.)
local function uploadOf(value)
  if string.sub(value, 1, 1) == 'r' then return tonumber(string.sub(value, 2)), true end
  return tonumber(value), false
end
-- Make an upload record pending again (a repeated upload or a renewal); returns false when there is none.
local function renewUpload(chunkId, owner, at)
  local own = K .. 'own:' .. chunkId
  local value = redis.call('HGET', own, owner)
  if not value then return false end
  local size, referenced = uploadOf(value)
  if referenced then
    redis.call('HSET', own, owner, size)
    redis.call('HINCRBY', K .. 'usage', 'p:' .. owner, size)
  end
  -- GT: a late, older note never shortens the grace of a newer upload.
  redis.call('ZADD', K .. 'uploads', 'GT', at, chunkId .. '|' .. owner)
  return true
end
local function markDone(id, now)
  local key = envKey(id)
  if redis.call('EXISTS', key) == 0 then return end
  if redis.call('SCARD', K .. 'open:' .. id) > 0 then return end
  if redis.call('HSETNX', key, 'doneAt', now) == 1 then
    redis.call('ZADD', K .. 'done', now, id)
    -- Its bytes are no longer held for its uploader.
    local f = redis.call('HMGET', key, 'uploader', 'heldBytes')
    if f[1] then redis.call('HINCRBY', K .. 'usage', 'r:' .. f[1], 0 - tonumber(f[2])) end
  end
end
`;

function script(body: string): string {
  return PRELUDE + body;
}

/**
 * ARGV: K, id, hash, bytes, sender, recipientsJson, chunkIdsJson, expiresAt,
 * acceptedAt, retainUntil, acceptance, now, uploader ('' for none), then
 * counted lists: chunk ids; parties; (address, deliverBy) pairs; (taskId,
 * network, recipientsJson) triples. Every mailbox item goes into `due` at
 * its deliverBy; every created task gets an `unqueued` marker, removed once
 * its job is added.
 * Returns {'accepted', seq per delivery} | {'duplicate', acceptance} |
 * {'conflict'} | {'unowned', chunk ids the uploader has no record of...}.
 */
export const ACCEPT = script(`
local id, hash = ARGV[2], ARGV[3]
local key = envKey(id)
local expiresAt, now, uploader = ARGV[8], ARGV[12], ARGV[13]
local i = 14
local n = tonumber(ARGV[i]); i = i + 1
local chunks = {}
for j = 1, n do chunks[j] = ARGV[i + j - 1] end
local existing = redis.call('HGET', key, 'hash')
if existing then
  if existing ~= hash then return {'conflict'} end
  if uploader ~= '' then
    -- A retry after a renewal (missing query) made the records pending again: the accepted
    -- envelope still charges them, so they count as referenced again, not twice.
    local released, seen = 0, {}
    for _, chunkId in ipairs(chunks) do
      if not seen[chunkId] then
        seen[chunkId] = true
        local own = K .. 'own:' .. chunkId
        local value = redis.call('HGET', own, uploader)
        if value then
          local size, referenced = uploadOf(value)
          if not referenced then
            released = released + size
            redis.call('HSET', own, uploader, 'r' .. size)
          end
        end
      end
    end
    if released > 0 then redis.call('HINCRBY', K .. 'usage', 'p:' .. uploader, 0 - released) end
  end
  return {'duplicate', redis.call('HGET', key, 'acceptance')}
end
if uploader ~= '' then
  -- One field lookup per chunk; all are checked before anything is written.
  local unowned, seen, distinct = {'unowned'}, {}, {}
  for _, chunkId in ipairs(chunks) do
    if not seen[chunkId] then
      seen[chunkId] = true
      distinct[#distinct + 1] = chunkId
      if redis.call('HEXISTS', K .. 'own:' .. chunkId, uploader) == 0 then unowned[#unowned + 1] = chunkId end
    end
  end
  if #unowned > 1 then return unowned end
  local held, released = 0, 0
  for _, chunkId in ipairs(distinct) do
    local own = K .. 'own:' .. chunkId
    local size, referenced = uploadOf(redis.call('HGET', own, uploader))
    held = held + size
    if not referenced then
      released = released + size
      redis.call('HSET', own, uploader, 'r' .. size)
    end
  end
  redis.call('HINCRBY', K .. 'usage', 'p:' .. uploader, 0 - released)
  redis.call('HINCRBY', K .. 'usage', 'r:' .. uploader, held)
  redis.call('HSET', key, 'uploader', uploader, 'heldBytes', held)
end
redis.call('HSET', key, 'hash', hash, 'bytes', ARGV[4], 'sender', ARGV[5], 'recipients', ARGV[6],
  'chunkIds', ARGV[7], 'expiresAt', expiresAt, 'acceptedAt', ARGV[9], 'retainUntil', ARGV[10],
  'acceptance', ARGV[11])
redis.call('SADD', K .. 'envs', id)
for _, chunkId in ipairs(chunks) do
  redis.call('SADD', K .. 'chunk:' .. chunkId, id)
end
i = i + n
n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do
  redis.call('SADD', K .. 'parties:' .. id, ARGV[i]); i = i + 1
end
local open = K .. 'open:' .. id
local result = {'accepted'}
n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do
  local address, deliverBy = ARGV[i], ARGV[i + 1]; i = i + 2
  local seq = redis.call('INCR', K .. 'seq:' .. address)
  redis.call('HSET', itemKey(address, seq), 'kind', 'envelope', 'env', id, 'deliverBy', deliverBy)
  redis.call('ZADD', K .. 'mb:' .. address, seq, seq)
  redis.call('SADD', open, 'd:' .. address)
  redis.call('ZADD', K .. 'due', deliverBy, dueMember(address, seq))
  redis.call('INCR', K .. 'mbcount')
  redis.call('PUBLISH', K .. 'mailbox', address)
  result[#result + 1] = seq
end
n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do
  local taskId, network, recipients = ARGV[i], ARGV[i + 1], ARGV[i + 2]; i = i + 3
  local taskKey = K .. 'task:' .. taskId
  if redis.call('EXISTS', taskKey) == 0 then
    redis.call('HSET', taskKey, 'kind', 'envelope', 'env', id, 'network', network,
      'recipients', recipients, 'deadline', expiresAt, 'state', 'pending')
    redis.call('INCR', K .. 'forwarding')
    redis.call('SADD', K .. 'unqueued', 'f:' .. taskId)
    redis.call('SADD', open, 'f:' .. taskId)
  end
end
markDone(id, now)
return result
`);

/** ARGV: K, address, envelopeId, dedupKey, payload. Returns 1 when added, 0 when the key is taken. */
export const PUSH_EVIDENCE = script(`
local address, env, dedupKey = ARGV[2], ARGV[3], ARGV[4]
local dedup = K .. 'dedup:' .. address
if redis.call('HEXISTS', dedup, dedupKey) == 1 then return 0 end
local seq = redis.call('INCR', K .. 'seq:' .. address)
redis.call('HSET', itemKey(address, seq), 'kind', 'evidence', 'env', env, 'key', dedupKey, 'payload', ARGV[5])
redis.call('HSET', dedup, dedupKey, seq)
redis.call('ZADD', K .. 'mb:' .. address, seq, seq)
redis.call('INCR', K .. 'mbcount')
redis.call('PUBLISH', K .. 'mailbox', address)
return 1
`);

/**
 * ARGV: K, address, after, limit. Returns flat (seq, kind, envelopeId, payload, acceptedAt)
 * quintuples; acceptedAt is '' for evidence items.
 */
export const READ_MAILBOX = script(`
local address = ARGV[2]
local seqs = redis.call('ZRANGEBYSCORE', K .. 'mb:' .. address, '(' .. ARGV[3], '+inf', 'LIMIT', 0, tonumber(ARGV[4]))
local out = {}
for _, seq in ipairs(seqs) do
  local f = redis.call('HMGET', itemKey(address, seq), 'kind', 'env', 'payload')
  local payload = f[3]
  local acceptedAt = ''
  -- Envelope items share the envelope's bytes instead of a copy per recipient.
  if f[1] == 'envelope' then
    local e = redis.call('HMGET', envKey(f[2]), 'bytes', 'acceptedAt')
    payload = e[1]
    acceptedAt = e[2] or ''
  end
  out[#out + 1] = seq
  out[#out + 1] = f[1]
  out[#out + 1] = f[2]
  out[#out + 1] = payload
  out[#out + 1] = acceptedAt
end
return out
`);

/** ARGV: K, address, now, seqs... Returns the number of items removed. */
export const ACK = script(`
local address, now = ARGV[2], ARGV[3]
local mb = K .. 'mb:' .. address
local removed = 0
for i = 4, #ARGV do
  local seq = ARGV[i]
  if redis.call('ZREM', mb, seq) == 1 then
    removed = removed + 1
    redis.call('DECR', K .. 'mbcount')
    local ik = itemKey(address, seq)
    local f = redis.call('HMGET', ik, 'kind', 'env', 'key')
    redis.call('DEL', ik)
    if f[1] == 'envelope' then
      redis.call('ZREM', K .. 'due', dueMember(address, seq))
      redis.call('SREM', K .. 'open:' .. f[2], 'd:' .. address)
      markDone(f[2], now)
    elseif redis.call('EXISTS', envKey(f[2])) == 1 then
      -- Keep the dedup key while the envelope record refuses replays.
      redis.call('RPUSH', K .. 'tombdedup:' .. f[2], address, f[3])
    else
      redis.call('HDEL', K .. 'dedup:' .. address, f[3])
    end
  end
end
return removed
`);

/**
 * ARGV: K, taskId, envelopeId, network, payload, deadline. A created task
 * gets an `unqueued` marker, removed once its job is added.
 * Returns 1 created, 2 already pending, 0 already finished.
 */
export const ENQUEUE_FORWARD = script(`
local taskKey = K .. 'task:' .. ARGV[2]
local state = redis.call('HGET', taskKey, 'state')
if state == 'pending' then return 2 end
if state then return 0 end
redis.call('HSET', taskKey, 'kind', 'evidence', 'env', ARGV[3], 'network', ARGV[4], 'payload', ARGV[5],
  'deadline', ARGV[6], 'state', 'pending')
redis.call('INCR', K .. 'forwarding')
redis.call('SADD', K .. 'unqueued', 'f:' .. ARGV[2])
return 1
`);

/**
 * ARGV: K, taskId, now, final state ('done' | 'gave_up'), network, wake.
 * Finishes the task (when still pending) and takes it off its network's
 * backlog; with wake > 0 (a success towards the network), also pops up to
 * `wake` backlog entries, closest deadline first, for the caller to
 * promote. Returns them flat (taskId, deadline, ...); one round trip per
 * finished forward.
 */
export const FINISH_FORWARD = script(`
local id, now = ARGV[2], ARGV[3]
local backlog = K .. 'backlog:' .. ARGV[5]
redis.call('ZREM', backlog, id)
local woken = {}
if tonumber(ARGV[6]) > 0 then woken = redis.call('ZPOPMIN', backlog, tonumber(ARGV[6])) end
local taskKey = K .. 'task:' .. id
local f = redis.call('HMGET', taskKey, 'state', 'kind', 'env')
if f[1] ~= 'pending' then return woken end
redis.call('DECR', K .. 'forwarding')
redis.call('SREM', K .. 'unqueued', 'f:' .. id)
if f[2] == 'envelope' then
  redis.call('SREM', K .. 'open:' .. f[3], 'f:' .. id)
  markDone(f[3], now)
end
if redis.call('EXISTS', envKey(f[3])) == 1 then
  -- A tombstone, so a re-enqueue of the same id stays a no-op while the envelope record lives.
  redis.call('HSET', taskKey, 'state', ARGV[4])
  redis.call('HDEL', taskKey, 'payload')
  redis.call('RPUSH', K .. 'tombtask:' .. f[3], id)
else
  redis.call('DEL', taskKey)
end
return woken
`);

/**
 * ARGV: K, now, leaseEnd, limit. Takes up to `limit` due items (`due`
 * score <= now) for the expiry sweep: each leaves its mailbox (if it had
 * not on an earlier try), counts an attempt, and gets `leaseEnd` as its
 * score, so no other sweep takes it while this one runs expired() (a
 * sweep that dies lets it come due again). Members whose item is gone
 * are dropped. Returns flat (address, seq, envelopeId, attempt) quadruples.
 */
export const EXPIRY_CLAIM = script(`
local now, leaseEnd = ARGV[2], ARGV[3]
local due = K .. 'due'
local out = {}
for _, member in ipairs(redis.call('ZRANGEBYSCORE', due, '-inf', now, 'LIMIT', 0, tonumber(ARGV[4]))) do
  local colon = string.find(member, ':', 1, true)
  local seq, address = string.sub(member, 1, colon - 1), string.sub(member, colon + 1)
  local ik = itemKey(address, seq)
  local f = redis.call('HMGET', ik, 'kind', 'env', 'state')
  if f[1] ~= 'envelope' then
    redis.call('ZREM', due, member)
  else
    -- 'expiring': taken out by an earlier try whose expired() failed or died; report it again.
    if f[3] ~= 'expiring' then
      redis.call('ZREM', K .. 'mb:' .. address, seq)
      redis.call('DECR', K .. 'mbcount')
      redis.call('HSET', ik, 'state', 'expiring')
    end
    local attempt = redis.call('HINCRBY', ik, 'attempt', 1)
    redis.call('ZADD', due, leaseEnd, member)
    out[#out + 1] = address
    out[#out + 1] = seq
    out[#out + 1] = f[2]
    out[#out + 1] = attempt
  end
end
return out
`);

/** ARGV: K, address, seq, now. Forgets an expired item after expired() returned. */
export const EXPIRY_FINISH = script(`
local address, seq, now = ARGV[2], ARGV[3], ARGV[4]
local ik = itemKey(address, seq)
local f = redis.call('HMGET', ik, 'env', 'state')
redis.call('ZREM', K .. 'due', dueMember(address, seq))
if f[2] ~= 'expiring' then return 0 end
redis.call('DEL', ik)
redis.call('SREM', K .. 'open:' .. f[1], 'd:' .. address)
markDone(f[1], now)
return 1
`);

/**
 * ARGV: K, at, members... Moves the `due` score of items being expired
 * (a renewed lease, or the time of a retry) to `at`; members no longer in
 * `due` stay out.
 */
export const EXPIRY_RESCHEDULE = script(`
local due = K .. 'due'
for i = 3, #ARGV do redis.call('ZADD', due, 'XX', ARGV[2], ARGV[i]) end
return 0
`);

/** ARGV: K, chunkId, address. 1 when address is a party of a live envelope that lists the chunk. */
export const CHUNK_VISIBLE = script(`
local ids = redis.call('SMEMBERS', K .. 'chunk:' .. ARGV[2])
for _, id in ipairs(ids) do
  if redis.call('HEXISTS', envKey(id), 'doneAt') == 0
    and redis.call('SISMEMBER', K .. 'parties:' .. id, ARGV[3]) == 1 then
    return 1
  end
end
return 0
`);

/** ARGV: K, chunkId, since. 1 when an envelope holds the chunk or it was uploaded after `since`. */
export const CHUNK_REFERENCED = script(`
local chunkId, since = ARGV[2], tonumber(ARGV[3])
if redis.call('SCARD', K .. 'chunk:' .. chunkId) > 0 then return 1 end
local at = redis.call('ZSCORE', K .. 'uploads', chunkId)
if at and tonumber(at) > since then return 1 end
for _, owner in ipairs(redis.call('HKEYS', K .. 'own:' .. chunkId)) do
  at = redis.call('ZSCORE', K .. 'uploads', chunkId .. '|' .. owner)
  if at and tonumber(at) > since then return 1 end
end
return 0
`);

/**
 * ARGV: K, chunkId, owner, size, at. Records (or renews, never backwards,
 * and makes pending again) the owner's upload of the chunk. Returns 1 when new.
 */
export const NOTE_UPLOAD = script(`
local chunkId, owner = ARGV[2], ARGV[3]
if renewUpload(chunkId, owner, ARGV[5]) then return 0 end
redis.call('HSET', K .. 'own:' .. chunkId, owner, ARGV[4])
redis.call('HINCRBY', K .. 'usage', 'p:' .. owner, ARGV[4])
redis.call('ZADD', K .. 'uploads', ARGV[5], chunkId .. '|' .. owner)
return 1
`);

/** ARGV: K, owner, at, chunk ids... Returns the ids the owner has a record of, each renewed to `at`. */
export const OWNED_CHUNKS = script(`
local owner, at = ARGV[2], ARGV[3]
local out = {}
for i = 4, #ARGV do
  if renewUpload(ARGV[i], owner, at) then out[#out + 1] = ARGV[i] end
end
return out
`);

/** ARGV: K, identity, chunkId. Returns {pendingBytes, referencedBytes, owned 0 | 1}. */
export const UPLOAD_USAGE = script(`
local f = redis.call('HMGET', K .. 'usage', 'p:' .. ARGV[2], 'r:' .. ARGV[2])
return {tonumber(f[1] or '0'), tonumber(f[2] or '0'), redis.call('HEXISTS', K .. 'own:' .. ARGV[3], ARGV[2])}
`);

/** ARGV: K, key, now, expiresAt, ttlMs. 1 when claimed now. */
export const CLAIM_ONCE = script(`
local key = K .. 'claim:' .. ARGV[2]
local expiresAt = redis.call('GET', key)
if expiresAt and tonumber(expiresAt) > tonumber(ARGV[3]) then return 0 end
redis.call('SET', key, ARGV[4], 'PX', ARGV[5])
return 1
`);

/**
 * ARGV: K, now, releaseCutoff, uploadCutoff, batch. One bounded step of
 * garbage collection. Returns {released, uploadsDropped, recordsDeleted,
 * orphan chunk ids...}; the caller repeats while a count equals the batch.
 */
export const COLLECT_GARBAGE = script(`
local now, batch = ARGV[2], tonumber(ARGV[5])
local candidates = {}
local released = redis.call('ZRANGEBYSCORE', K .. 'done', '-inf', ARGV[3], 'LIMIT', 0, batch)
for _, id in ipairs(released) do
  local key = envKey(id)
  for _, chunkId in ipairs(cjson.decode(redis.call('HGET', key, 'chunkIds'))) do
    redis.call('SREM', K .. 'chunk:' .. chunkId, id)
    candidates[#candidates + 1] = chunkId
  end
  redis.call('ZREM', K .. 'done', id)
  redis.call('HSET', key, 'releasedAt', now)
  redis.call('ZADD', K .. 'released', redis.call('HGET', key, 'retainUntil'), id)
end
local uploads = redis.call('ZRANGEBYSCORE', K .. 'uploads', '-inf', ARGV[4], 'LIMIT', 0, batch)
for _, member in ipairs(uploads) do
  redis.call('ZREM', K .. 'uploads', member)
  local chunkId = member
  local bar = string.find(member, '|', 1, true)
  if bar then
    chunkId = string.sub(member, 1, bar - 1)
    local owner, own = string.sub(member, bar + 1), K .. 'own:' .. chunkId
    local value = redis.call('HGET', own, owner)
    if value then
      local size, referenced = uploadOf(value)
      redis.call('HDEL', own, owner)
      if not referenced then redis.call('HINCRBY', K .. 'usage', 'p:' .. owner, 0 - size) end
    end
  end
  candidates[#candidates + 1] = chunkId
end
local out = {#released, #uploads, 0}
local seen = {}
for _, chunkId in ipairs(candidates) do
  if not seen[chunkId] then
    seen[chunkId] = true
    -- Still held by an envelope (live, or done but not released) or a recent upload: keep.
    if redis.call('EXISTS', K .. 'chunk:' .. chunkId) == 0 and redis.call('EXISTS', K .. 'own:' .. chunkId) == 0
      and not redis.call('ZSCORE', K .. 'uploads', chunkId) then
      out[#out + 1] = chunkId
    end
  end
end
local deletable = redis.call('ZRANGEBYSCORE', K .. 'released', '-inf', now, 'LIMIT', 0, batch)
for _, id in ipairs(deletable) do
  local pairs_ = redis.call('LRANGE', K .. 'tombdedup:' .. id, 0, -1)
  for j = 1, #pairs_, 2 do redis.call('HDEL', K .. 'dedup:' .. pairs_[j], pairs_[j + 1]) end
  for _, taskId in ipairs(redis.call('LRANGE', K .. 'tombtask:' .. id, 0, -1)) do
    redis.call('DEL', K .. 'task:' .. taskId)
  end
  redis.call('DEL', envKey(id), K .. 'parties:' .. id, K .. 'open:' .. id, K .. 'tombdedup:' .. id, K .. 'tombtask:' .. id)
  redis.call('ZREM', K .. 'released', id)
  redis.call('SREM', K .. 'envs', id)
end
out[3] = #deletable
return out
`);

/**
 * ARGV: K. Adopts what earlier relays left. One from before BullMQ owned
 * the scheduling: its outbox (the `pending` set, the `timers` zset, the
 * `lease` zset): pending tasks become `unqueued` markers, whose jobs the
 * caller then adds, and are counted; timers (same members as `due`) go
 * into `due`. One that gave every delivery its own expiry job: its expiry
 * markers (`x:<seq>:<address>`) go into `due` at their deliverBy (its jobs
 * still queued are adopted the same way when they run, see redis.ts).
 * Returns how many markers it added.
 */
export const ADOPT_LEGACY_OUTBOX = script(`
local added = 0
for _, taskId in ipairs(redis.call('SMEMBERS', K .. 'pending')) do
  if redis.call('HGET', K .. 'task:' .. taskId, 'state') == 'pending' then
    redis.call('INCR', K .. 'forwarding')
    added = added + redis.call('SADD', K .. 'unqueued', 'f:' .. taskId)
  end
end
local timers = redis.call('ZRANGE', K .. 'timers', 0, -1, 'WITHSCORES')
for j = 1, #timers, 2 do
  redis.call('ZADD', K .. 'due', 'NX', timers[j + 1], timers[j])
end
for _, marker in ipairs(redis.call('SMEMBERS', K .. 'unqueued')) do
  if string.sub(marker, 1, 2) == 'x:' then
    local member = string.sub(marker, 3)
    local colon = string.find(member, ':', 1, true)
    if colon then
      local deliverBy = redis.call('HGET', itemKey(string.sub(member, colon + 1), string.sub(member, 1, colon - 1)), 'deliverBy')
      if deliverBy then redis.call('ZADD', K .. 'due', 'NX', deliverBy, member) end
    end
    redis.call('SREM', K .. 'unqueued', marker)
  end
end
redis.call('DEL', K .. 'pending', K .. 'timers', K .. 'lease')
return added
`);

/**
 * ARGV: K, candidate. The mailbox epoch of this namespace, set to the
 * candidate (a fresh random id) the first time it is asked for: a store
 * created (or lost and recreated) gets a new one.
 */
export const MAILBOX_EPOCH = script(`
local key = K .. 'epoch'
local epoch = redis.call('GET', key)
if epoch then return epoch end
redis.call('SET', key, ARGV[2])
return ARGV[2]
`);
