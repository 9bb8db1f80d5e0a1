"""One package per paper: its experiments, its claims (declared as data), its reference numbers and the figure
and table helpers its notebook calls. The core of the library never imports from here."""
