"""Load generators and reports; `make bench` runs them."""
