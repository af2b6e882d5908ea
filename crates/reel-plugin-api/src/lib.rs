//! `reel-plugin-api` is the interface reel plugins are built against, and the only
//! crate a plugin depends on. A plugin is a shared library (a Rust `cdylib`) that
//! exports one root module; reel loads it at run time, checks that it was built
//! against a compatible version of this interface, and calls it once per frame.
//!
//! Everything that crosses the boundary is ABI-stable (`abi_stable`'s types and
//! `#[repr(C)]` structs checked by its layout checker), so a plugin built with
//! another compiler version works without recompiling reel. Per frame the plugin
//! gets a [`FrameMut`] (the host's pixel buffer, borrowed mutably: no copy), the
//! frame's [`Detections`] (read, and appendable), and returns a result. Panics are
//! caught at the boundary by the code [`export_plugin!`] generates.
//!
//! This crate knows nothing of reel's engine: not its frames, pools, scheduler or
//! host. It depends on `abi_stable` alone.
//!
//! ```
//! use reel_plugin_api::{
//!     Caps, Detections, FrameMut, PixelFormat, Plugin, PluginError, PluginInfo, Processor,
//! };
//!
//! /// Inverts every byte of the frame.
//! pub struct Invert;
//!
//! impl Processor for Invert {
//!     fn process(
//!         &mut self,
//!         frame: &mut FrameMut<'_>,
//!         _detections: &mut Detections<'_, '_>,
//!     ) -> Result<(), PluginError> {
//!         frame.pixels_mut().iter_mut().for_each(|b| *b = 255 - *b);
//!         Ok(())
//!     }
//! }
//!
//! impl Plugin for Invert {
//!     fn info() -> PluginInfo {
//!         PluginInfo::new("invert", env!("CARGO_PKG_VERSION"), "Inverts every pixel")
//!             .consumes(Caps::PIXELS)
//!             .produces(Caps::PIXELS)
//!             .formats(&[PixelFormat::Rgb24, PixelFormat::Gray8])
//!     }
//!
//!     fn create(_config: &str) -> Result<Self, PluginError> {
//!         Ok(Invert)
//!     }
//! }
//!
//! reel_plugin_api::export_plugin!(Invert);
//! # fn main() {}
//! ```
#![deny(missing_docs)]

mod detection;
mod error;
mod frame;
#[allow(
    non_local_definitions,
    reason = "the code `#[sabi_trait]` generates implements traits inside a constant"
)]
mod processor;

use std::fmt;

use abi_stable::library::RootModule;
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::{RResult, RStr, RString, RVec};
use abi_stable::{StableAbi, declare_root_module_statics};

pub use detection::{BBox, Detection, Detections, PixelRect};
pub use error::{ErrorKind, PluginError};
pub use frame::{FrameMut, LayoutError, PixelFormat, Plane};
pub use processor::{
    Counter, Counters, Plugin, Processor, ProcessorBox, ProcessorDyn, ProcessorDyn_TO,
    into_processor_box,
};

/// The version of this interface, `major.minor.patch`. A plugin loads when its
/// major version equals the host's (and, while the major version is 0, its minor
/// version is at least the host's); the layout of every type is checked as well.
///
/// 1.1 added [`PluginMod::stateless`]: a plugin built against 1.0 loads, and is
/// taken as stateful.
pub const INTERFACE_VERSION: &str = "1.1.0";

/// What a plugin reads or writes: a set of [`Caps::PIXELS`] and
/// [`Caps::DETECTIONS`].
#[repr(transparent)]
#[derive(StableAbi, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Caps(u32);

impl Caps {
    /// Nothing.
    pub const NONE: Caps = Caps(0);
    /// The frame's pixels.
    pub const PIXELS: Caps = Caps(1);
    /// The frame's detections.
    pub const DETECTIONS: Caps = Caps(2);

    /// Whether every capability of `other` is in `self`.
    pub fn contains(self, other: Caps) -> bool {
        self.0 & other.0 == other.0
    }

    /// The names of the capabilities in the set (`pixels`, `detections`).
    pub fn names(self) -> Vec<&'static str> {
        [(Caps::PIXELS, "pixels"), (Caps::DETECTIONS, "detections")]
            .into_iter()
            .filter(|(c, _)| self.contains(*c))
            .map(|(_, n)| n)
            .collect()
    }
}

impl std::ops::BitOr for Caps {
    type Output = Caps;

    fn bitor(self, rhs: Caps) -> Caps {
        Caps(self.0 | rhs.0)
    }
}

impl fmt::Debug for Caps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

/// What a plugin says about itself.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct PluginInfo {
    /// Short name users select it by (`motion`), lowercase letters, digits and `-`.
    pub name: RString,
    /// The plugin's own version.
    pub version: RString,
    /// One line on what it does.
    pub description: RString,
    /// What it reads from a frame.
    pub consumes: Caps,
    /// What it changes or adds.
    pub produces: Caps,
    /// The pixel formats it accepts; the host never passes it another.
    pub formats: RVec<PixelFormat>,
}

impl PluginInfo {
    /// A description with no capabilities and no formats yet.
    pub fn new(name: &str, version: &str, description: &str) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            description: description.into(),
            consumes: Caps::NONE,
            produces: Caps::NONE,
            formats: RVec::new(),
        }
    }

    /// Sets what the plugin reads.
    pub fn consumes(mut self, caps: Caps) -> Self {
        self.consumes = caps;
        self
    }

    /// Sets what the plugin changes or adds.
    pub fn produces(mut self, caps: Caps) -> Self {
        self.produces = caps;
        self
    }

    /// Sets the pixel formats the plugin accepts.
    pub fn formats(mut self, formats: &[PixelFormat]) -> Self {
        self.formats = formats.iter().copied().collect();
        self
    }
}

/// The root module every plugin library exports (through [`export_plugin!`]). New
/// entries may be added after the last one in a minor version.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModRef, prefix_fields = PluginModPrefix)))]
#[sabi(missing_field(panic))]
pub struct PluginMod {
    /// Describes the plugin.
    pub info: extern "C" fn() -> RResult<PluginInfo, PluginError>,
    /// Creates a processor from a configuration (a JSON object's text).
    #[sabi(last_prefix_field)]
    pub create: extern "C" fn(config: RStr<'_>) -> RResult<ProcessorBox, PluginError>,
    /// Whether the plugin's processors keep nothing from one frame to the next
    /// ([`Plugin::stateless`]); a module without the entry is stateful.
    #[sabi(missing_field(with = stateful))]
    pub stateless: extern "C" fn() -> bool,
}

/// The answer of a module that does not say: stateful.
fn stateful() -> extern "C" fn() -> bool {
    extern "C" fn no() -> bool {
        false
    }
    no
}

impl RootModule for PluginModRef {
    declare_root_module_statics! {PluginModRef}
    const BASE_NAME: &'static str = "reel_plugin";
    const NAME: &'static str = "reel plugin";
    const VERSION_STRINGS: VersionStrings = VersionStrings::new(INTERFACE_VERSION);
}

/// Exports `$plugin` (a type implementing [`Plugin`]) as the library's root
/// module. Every entry point it generates runs the plugin's code inside
/// `catch_unwind`, so a panic becomes an error the host sees, never an unwind
/// across the boundary. Use it once, in the crate root of a `cdylib`.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        #[doc(hidden)]
        fn __reel_plugin_root_module() -> $crate::PluginModRef {
            $crate::__private::root_module::<$plugin>()
        }

        /// The library header reel looks up when it loads this plugin.
        #[doc(hidden)]
        #[unsafe(export_name = "_1as_0lib_1header_0root_bmodule_bloader")]
        pub static __REEL_PLUGIN_LIB_HEADER: $crate::__private::LibHeader = {
            extern "C" fn __reel_plugin_loader() -> $crate::__private::RootModuleResult {
                $crate::__private::call_root_module_loader(__reel_plugin_root_module)
            }
            // SAFETY: the loader returns the root module of type `PluginModRef`, the
            // type the header is declared with.
            unsafe {
                $crate::__private::LibHeader::from_constructor::<$crate::PluginModRef>(
                    __reel_plugin_loader,
                    $crate::__private::CheckTypeLayout::Yes,
                )
            }
        };
    };
}

/// What [`export_plugin!`] expands to needs; not part of the interface.
#[doc(hidden)]
pub mod __private {
    pub use abi_stable::library::{
        __call_root_module_loader as call_root_module_loader, CheckTypeLayout, LibHeader,
        RootModuleResult,
    };

    use abi_stable::prefix_type::PrefixTypeTrait;

    /// Builds the root module of plugin `P`.
    pub fn root_module<P: super::Plugin>() -> super::PluginModRef {
        super::PluginMod {
            info: super::processor::info_entry::<P>,
            create: super::processor::create_entry::<P>,
            stateless: super::processor::stateless_entry::<P>,
        }
        .leak_into_prefix()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_exported_symbol_is_the_one_abi_stable_looks_up() {
        assert_eq!(
            abi_stable::library::ROOT_MODULE_LOADER_NAME,
            "_1as_0lib_1header_0root_bmodule_bloader"
        );
    }
}
