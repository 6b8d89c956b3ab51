"""The book's own tooling: the execution cache, parallel execution, assets, launch links, search,
the link checker, notebook export and the build benchmark. Chapters never import it (the build
appendix, which reports the benchmark, is the one exception).
"""
