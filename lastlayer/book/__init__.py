"""The book's tooling: the results contract (`report`), the papermill runner (`runner`), the generated pages
(`pages`), the command line (`cli`), the benchmark (`bench`) and the notebook helpers (`notebook`).
It runs and renders the papers' notebooks; it computes nothing that a notebook reports."""
