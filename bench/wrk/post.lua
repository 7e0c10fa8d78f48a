-- POST of a 16 KiB body for the "post" scenario; the app echoes it back. Keep in step with
-- POST_BODY in suite/scenarios.py and the limit server's canned reply.
wrk.method = "POST"
wrk.body = string.rep("x", 16384)
wrk.headers["Content-Type"] = "application/octet-stream"
