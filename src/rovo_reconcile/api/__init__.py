"""The Admin API client: transport guards, retries, pagination, typed errors, live-state reads.

errors.py     the API error tree and the parser of Atlassian's three error shapes
secrets.py    the API key, kept out of every repr, message and log line
transport.py  transports: the read-only guard and a request counter
retry.py      when and how long to wait before trying again
client.py     AdminClient: one shared httpx client, concurrency cap, paging
live.py       read one organization's live state into the policy model
"""
