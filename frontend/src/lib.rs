//! The dashboard's browser entry. Everything it shows lives in `dashboard` (ui/); this crate only
//! installs the panic hook and hydrates the page the node rendered (`raft3d` serves it).

/// Called by the bundle's loader script once the WASM module is instantiated.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    dashboard::hydrate();
}
