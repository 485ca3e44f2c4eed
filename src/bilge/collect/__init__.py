"""collect: the engine (and, when readable, its data-root) into a `Snapshot`.

`snapshot` is the entry point; `listing` and `prefetch` start the engine's list
calls and the data-root's reading before the rest of bilge has loaded;
`dataroot` reads the engine's own files; `datafiles` looks inside a volume for a
database's files. Kept free of imports: the command line loads `prefetch` first.
"""
