"""Server-side Lua scripts of the Redis transport.

Each script does in one atomic step what kombu 5.x does in several round
trips, which closes the windows in which a message could be lost:

* :data:`POP` removes messages from their queues *and* records them as
  unacknowledged (and first applies any pending acknowledgements).  The
  copies of one publish routed to several queues share a delivery tag, so
  a copy is recorded under ``tag + '@' + queue`` (plus a counter if taken),
  never under the bare tag kombu 5.x uses (kombu overwrote one copy's
  record with another's).  POP returns the recorded tag, which becomes
  the delivered message's delivery tag.
* :data:`RESTORE` moves unacknowledged messages back to their queues only if
  their record is unchanged (a compare-and-swap, so two restorers or a late
  ack never duplicate a message).
* :data:`ROUTE` reads the binding set of a direct or topic exchange and
  pushes the message to every matching queue, saving a round trip.
* :data:`REFRESH_BINDING` and :data:`SWEEP_BINDINGS` are kombu 5.7's own
  scripts for the bindings of queues with ``x-expires``.

The record format is kombu's: ``unacked`` maps a delivery tag to the JSON
text ``[payload, exchange, routing_key]`` and ``unacked_index`` scores each
tag with the time it was delivered.  :data:`POP` writes ``[payload, "",
queue]``, the anonymous exchange and the name of the queue the message came
from, so a restore (ours or kombu's, which routes an anonymous-exchange
record to the queue named by its routing key) puts the message back into
that one queue; the payload keeps its own ``delivery_info`` (the exchange
and routing key it was published with).  Scripts never re-encode a payload
(Lua's cjson would turn ``[]`` into ``{}`` and round large integers); the
record is built by concatenating the payload text as stored.
"""

from __future__ import annotations

from hashlib import sha1
from typing import Any

from kombu_redis.keys import COPY_TAG_SEP

__all__ = ("COPY_TAG_SEP", "POP", "REFRESH_BINDING", "RESTORE", "ROUTE", "SWEEP_BINDINGS", "UNLOCK",
           "Script")


class Script:
    """A Lua script run with EVALSHA, loaded on first ``NOSCRIPT``."""

    __slots__ = ("source", "sha")

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = sha1(source.encode()).hexdigest()

    def args(self, keys: list[Any], argv: list[Any]) -> list[Any]:
        """The EVALSHA command for ``keys`` and ``argv``."""
        return ["EVALSHA", self.sha, len(keys), *keys, *argv]



#: KEYS: unacked hash, unacked index, then the queue keys, priority level
#: major (all queues at the first step, then all at the next, ...).
#: ARGV: now, max count, number of queues, per-queue record flags ('1'/'0'),
#: round robin ('1') or drain in order ('0'), quarantine suffix, the queue
#: names (without the key prefix, as the records name them), then the
#: delivery tags to acknowledge before popping.
#: Returns a flat list of triples: queue index (negative: quarantined, not
#: counted in the max count), raw message, the tag it was recorded under
#: ('' if not recorded): always ``tag + COPY_TAG_SEP + queue`` (plus
#: ``COPY_TAG_SEP + n`` if that field is taken), never the bare tag, which
#: is the field kombu 5.x records its copy under.
POP = Script(r"""
local TAG_SEP = '@TAG_SEP@'
local unacked, index = KEYS[1], KEYS[2]
local now, limit, nq = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local flags, rr, qsuffix = ARGV[4], ARGV[5] == '1', ARGV[6]
if #ARGV > 6 + nq then
  local tags = {unpack(ARGV, 7 + nq)}
  redis.call('HDEL', unacked, unpack(tags))
  redis.call('ZREM', index, unpack(tags))
end
local out, n = {}, 0
-- The envelope's properties.  kombu writes them last, so decoding the tail
-- after the last "properties" key is enough (and spares decoding a large
-- body); any other layout is decoded in full.
local function properties(raw)
  local size = #raw
  local s, last = size > 8192 and size - 8192 or 1, nil
  while true do
    local _, b = string.find(raw, '"properties"%s*:%s*', s)
    if not b then break end
    last, s = b, b + 1
  end
  if last then
    local ok, p = pcall(cjson.decode, string.sub(raw, last + 1, size - 1))
    if ok and type(p) == 'table' then return p end
  end
  local ok, msg = pcall(cjson.decode, raw)
  if ok and type(msg) == 'table' and type(msg.properties) == 'table' then return msg.properties end
end
-- [payload, "", queue]: restored to this queue, by kombu 5.x too.  The
-- field is always tag, TAG_SEP, queue (and a counter if taken), never the
-- bare tag that kombu 5.x records under, so the copies of a message routed
-- to several queues, and kombu's records, each keep a field of their own.
local function record(tag, raw, queue)
  local value = '[' .. raw .. ', "", ' .. cjson.encode(queue) .. ']'
  local base = tag .. TAG_SEP .. queue
  local field, n = base, 1
  while redis.call('HSETNX', unacked, field, value) == 0 do
    n = n + 1
    field = base .. TAG_SEP .. n
  end
  redis.call('ZADD', index, now, field)
  return field
end
local function take(i, key)
  local raw = redis.call('RPOP', key)
  if not raw then return false end
  local p = properties(raw)
  local tag = p and p.delivery_tag
  local recorded = ''
  if type(tag) ~= 'string' then
    redis.call('LPUSH', KEYS[2 + i] .. qsuffix, raw)
    out[#out + 1] = -i
  else
    if string.byte(flags, i) == 49 then
      recorded = record(tag, raw, ARGV[6 + i])
    end
    out[#out + 1] = i
    n = n + 1
  end
  out[#out + 1] = raw
  out[#out + 1] = recorded
  return true
end
local nkeys = #KEYS - 2
local base = 2
while base - 2 < nkeys and n < limit do
  if rr then
    local empty, left = {}, nq
    while left > 0 and n < limit do
      for i = 1, nq do
        if n >= limit then break end
        if not empty[i] and not take(i, KEYS[base + i]) then
          empty[i] = true
          left = left - 1
        end
      end
    end
  else
    for i = 1, nq do
      while n < limit and take(i, KEYS[base + i]) do end
    end
  end
  base = base + nq
end
return out
""".replace("@TAG_SEP@", COPY_TAG_SEP))

#: KEYS: unacked hash, unacked index.  ARGV: '1' to push at the back of the
#: queue (LPUSH, a requeue) or '0' at the front (RPUSH, a restore), the
#: ceiling ('' for none, else the highest index score a tag may have to
#: move), then groups of: tag, expected record ('' for none), payload,
#: number of destination keys, the destination keys.  A group moves only if
#: the record still equals the expected one and, with a ceiling, the tag's
#: index score is still at most the ceiling (a refresh since the tag was
#: selected keeps it); a missing record with an expected '' just drops the
#: index entry.  Returns how many messages moved.
RESTORE = Script(r"""
local unacked, index = KEYS[1], KEYS[2]
local push = ARGV[1] == '1' and 'LPUSH' or 'RPUSH'
local ceiling = ARGV[2] ~= '' and tonumber(ARGV[2]) or nil
local function overdue(tag)
  if not ceiling then return true end
  local score = redis.call('ZSCORE', index, tag)
  return score ~= false and tonumber(score) <= ceiling
end
local i, moved = 3, 0
while i <= #ARGV do
  local tag, expected, payload, ndest = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
  if overdue(tag) then
    local current = redis.call('HGET', unacked, tag)
    if current == expected then
      redis.call('HDEL', unacked, tag)
      redis.call('ZREM', index, tag)
      for d = 1, ndest do
        redis.call(push, ARGV[i + 3 + d], payload)
      end
      moved = moved + 1
    elseif not current and expected == '' then
      redis.call('ZREM', index, tag)
    end
  end
  i = i + 4 + ndest
end
return moved
""")

#: KEYS: the exchange's binding set.  ARGV: routing key, separator, payload,
#: key prefix, key suffix (priority), 'topic' or 'direct'.  Pushes the
#: payload to every bound queue the routing key reaches (AMQP topic
#: semantics: '*' one word, '#' zero or more); returns how many.
ROUTE = Script(r"""
local rk, sep, payload = ARGV[1], ARGV[2], ARGV[3]
local prefix, suffix, topic = ARGV[4], ARGV[5], ARGV[6] == 'topic'
local function words(s)
  local t = {}
  for w in string.gmatch(s .. '.', '([^.]*)%.') do t[#t + 1] = w end
  return t
end
local function match(p, pi, w, wi)
  while pi <= #p do
    local pw = p[pi]
    if pw == '#' then
      if pi == #p then return true end
      for k = wi, #w + 1 do
        if match(p, pi + 1, w, k) then return true end
      end
      return false
    end
    if wi > #w or (pw ~= '*' and pw ~= w[wi]) then return false end
    pi, wi = pi + 1, wi + 1
  end
  return wi > #w
end
local rkw = topic and words(rk)
local seen, n = {}, 0
for _, member in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local a = string.find(member, sep, 1, true)
  if a then
    local b = string.find(member, sep, a + #sep, true)
    if b then
      local brk, queue = string.sub(member, 1, a - 1), string.sub(member, b + #sep)
      local hit
      if topic then hit = match(words(brk), 1, rkw, 1) else hit = brk == rk end
      if hit and not seen[queue] then
        seen[queue] = true
        redis.call('LPUSH', prefix .. queue .. suffix, payload)
        n = n + 1
      end
    end
  end
end
return n
""")

#: kombu 5.7's script, verbatim (its wire format): adds member ARGV[1] to
#: binding table KEYS[1] and raises exchange ARGV[2]'s deadline in the
#: sorted set KEYS[2] to ARGV[3] ms from now, by the server clock.
REFRESH_BINDING = Script("""
redis.call('SADD', KEYS[1], ARGV[1])
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZADD', KEYS[2], 'GT', ms + tonumber(ARGV[3]), ARGV[2])
""")

#: kombu 5.7's script, verbatim: deletes up to ARGV[3] binding tables whose
#: deadline in the sorted set KEYS[1] has passed.  ARGV[1] and ARGV[2] are
#: the table and permanent-set keys without the exchange name.  A table
#: whose permanent set still lists a queue without x-expires is kept, and
#: only its deadline is dropped.
SWEEP_BINDINGS = Script("""
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local overdue = redis.call(
    'ZRANGEBYSCORE', KEYS[1], '-inf', ms, 'LIMIT', 0, tonumber(ARGV[3]))
for _, exchange in ipairs(overdue) do
    if redis.call('EXISTS', ARGV[2] .. exchange) == 0 then
        redis.call('DEL', ARGV[1] .. exchange)
    end
    redis.call('ZREM', KEYS[1], exchange)
end
return #overdue
""")

#: KEYS: lock key.  ARGV: the holder's token.  Deletes the lock if held.
UNLOCK = Script(r"""
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
""")
