//! A guard that turns a panic inside redb into an error, silently.
//!
//! redb may panic on a file corrupted outside it (debug builds assert that
//! a page is well formed; any build can index out of bounds on a garbled
//! length). [`catch`] runs a closure under [`std::panic::catch_unwind`] and
//! returns the panic's message instead. So that the default hook does not
//! print that panic (and a backtrace) to stderr as if the process were
//! crashing, [`catch`] installs, once per process, a panic hook that chains
//! to the hook installed before it, except on a thread that is inside a
//! guard: there it only records the message and location for the error.
//!
//! Panics outside a guard still reach the previous hook unchanged. A hook
//! installed *after* this one replaces it: guarded panics are then printed
//! by that hook, but still caught. With `panic = "abort"` nothing can be
//! caught and a panic in redb aborts the process.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    /// Whether this thread is inside [`catch`].
    static GUARDED: Cell<bool> = const { Cell::new(false) };
    /// The message and location of the last panic caught on this thread.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

static HOOK: Once = Once::new();

/// Installs the chained hook (once per process).
fn install_hook() {
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if GUARDED.with(Cell::get) {
                let message = match info.location() {
                    Some(at) => format!("redb panicked at {at}: {}", message(info.payload())),
                    None => format!("redb panicked: {}", message(info.payload())),
                };
                LAST_PANIC.with(|last| *last.borrow_mut() = Some(message));
            } else {
                previous(info);
            }
        }));
    });
}

/// Runs `f`; if it panics, returns the panic's message (and location, when
/// the hook saw it) instead of unwinding further. Nothing is printed for a
/// caught panic.
///
/// Whatever `f` borrowed mutably MUST be treated as broken after an `Err`
/// (the closure is asserted unwind-safe so that a redb handle can be used
/// inside it; the caller stops using that handle).
pub fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    install_hook();
    LAST_PANIC.with(|last| last.borrow_mut().take());
    let outer = GUARDED.with(|guarded| guarded.replace(true));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    GUARDED.with(|guarded| guarded.set(outer));
    result.map_err(|payload| {
        LAST_PANIC
            .with(|last| last.borrow_mut().take())
            .unwrap_or_else(|| format!("redb panicked: {}", message(payload.as_ref())))
    })
}

/// The text of a panic payload (`panic!` with a literal or a format string).
fn message(payload: &(dyn Any + Send)) -> &str {
    if let Some(text) = payload.downcast_ref::<&str>() {
        text
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text
    } else {
        "(a panic without a message)"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_its_message_with_location() {
        let caught = catch(|| -> u32 { panic!("Invalid page type byte {}", 7) });
        let message = caught.expect_err("the closure panicked");
        assert!(message.contains("Invalid page type byte 7"), "{message}");
        assert!(message.contains("guard.rs"), "location missing: {message}");
        // The flag is cleared again, so later panics reach the previous hook.
        assert!(!GUARDED.with(Cell::get));
    }

    #[test]
    fn a_value_passes_through() {
        assert_eq!(catch(|| 42), Ok(42));
    }

    #[test]
    fn nested_guards_restore_the_outer_flag() {
        let outer = catch(|| {
            let inner = catch(|| -> () { panic!("inner") });
            assert!(inner.is_err());
            GUARDED.with(Cell::get)
        });
        assert_eq!(outer, Ok(true));
        assert!(!GUARDED.with(Cell::get));
    }
}
