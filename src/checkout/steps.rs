//! The step counter of an apply, and the crash hooks tests use to stop it between steps.

use super::CheckoutError;

/// Test hook for real-process crash tests: abort the process right before this step.
pub const CRASH_ENV: &str = "CODEXPORT_CRASH_BEFORE_STEP";

/// Counts steps and stops at the injected crash point, if any.
pub(super) struct Steps {
    pub(super) next: usize,
    crash: Option<usize>,
    abort: Option<usize>,
}

impl Steps {
    pub(super) fn new(crash: Option<usize>, abort: Option<usize>) -> Self {
        Self {
            next: 0,
            crash,
            abort,
        }
    }

    /// How many of the next `n` steps may run before an injected crash or abort: steps that
    /// run in parallel are started only up to there.
    pub(super) fn allowed(&self, n: usize) -> usize {
        [self.crash, self.abort]
            .into_iter()
            .flatten()
            .filter(|&at| at >= self.next)
            .map(|at| at - self.next)
            .min()
            .map_or(n, |k| k.min(n))
    }

    /// Counts `n` steps that ran (at most [`Steps::allowed`] of them).
    pub(super) fn advance(&mut self, n: usize) -> Result<(), CheckoutError> {
        for _ in 0..n {
            self.step()?;
        }
        Ok(())
    }

    /// Called right before each step.
    pub(super) fn step(&mut self) -> Result<(), CheckoutError> {
        if self.abort == Some(self.next) {
            std::process::abort();
        }
        if self.crash == Some(self.next) {
            return Err(CheckoutError::InjectedCrash { step: self.next });
        }
        self.next += 1;
        Ok(())
    }
}
