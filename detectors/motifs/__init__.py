"""Mining live traffic for unknown triggers: input n-grams concentrated in anomalous outputs."""
