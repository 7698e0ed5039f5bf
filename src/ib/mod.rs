//! The gateway client over `ibapi` 5.5.0 and the one classification of IB outcomes.
