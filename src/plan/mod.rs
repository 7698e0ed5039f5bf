//! The plan file model (TOML or YAML) and its validation with located errors.
