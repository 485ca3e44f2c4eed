"""bilge against its peers, side by side on the same private engine (`make bench`)."""
