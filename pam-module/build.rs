//! Links the unwinder statically (libgcc_eh.a) instead of depending on libgcc_s.so.1.
//!
//! Every process that loads pam_credd.so used to load libgcc_s.so.1 too, whose constructor
//! (`__cpu_indicator_init`) runs a dozen CPUID instructions; in a virtual machine each one traps to
//! the hypervisor, and that load was most of the module's cost (docs/benchmarks.md). With the
//! unwinder linked in (hidden: the version script exports only the `pam_sm_*` hooks), panics still
//! unwind to pam-bindings' guard at each hook, which returns PAM_ABORT (`panic = "unwind"` stays).
//! Listed as a native library of this crate, `-lgcc_eh` comes before the standard library's
//! `-lgcc_s` on the link line, and `--as-needed` then drops libgcc_s.so.1.

fn main() {
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let target_env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    let panic = std::env::var("CARGO_CFG_PANIC").unwrap_or_default();
    if target_os == "linux" && target_env == "gnu" && panic == "unwind" {
        println!("cargo:rustc-link-lib=static:-bundle=gcc_eh");
    }
}
