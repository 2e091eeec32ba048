-- wrk script: send PIPE (the first argument after --, default 4) keep-alive
-- GETs of wrk's URL path at once on each connection, so that wrk makes one
-- write per PIPE requests. load.sh's *-pipe workloads use it where wrk -t1
-- on one CPU would otherwise run out of CPU before the server does.
-- Latency is per pipelined batch (wrk records it when the last response of
-- a batch is in); every response counts as a request.
local batch

function init(args)
	local depth = tonumber(args[1]) or 4
	local r = {}
	for i = 1, depth do
		r[i] = wrk.format(nil)
	end
	batch = table.concat(r)
end

function request()
	return batch
end
