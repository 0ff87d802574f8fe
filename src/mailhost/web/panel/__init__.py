"""Control panel pages: one module per level, plus login, help and DNS."""
