"""state: the SQLite store under the state dir (`store`), the records it writes
(`records`), and which run wrote an audit entry (`runs`)."""
