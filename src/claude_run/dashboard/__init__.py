"""The live dashboard and the self-contained HTML report over the ledger.

data (ledger -> view model) -> render (view model -> HTML/SVG fragments) -> page (the document)
-> server (HTTP + server-sent events). Only `data` knows how records are aggregated.
"""
