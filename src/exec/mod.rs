//! The executor: scheduler, pacing governor, retries and resume.
