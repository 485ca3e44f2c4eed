"""state: the SQLite store under the state dir (`store`, its API); how it writes,
in group commits or in memory while the disk is full (`journal`); its schema
(`migrations`); telling a full disk from other failures (`space`); the records
it writes (`records`); and which run wrote an audit entry (`runs`)."""
