//! Deserializing the registries' records: typed fields, and every other field kept in order
//! in an `extra` collection ([`Collect`](crate::extra::Collect): a `serde_json::Map`, or an
//! [`Extra`](crate::Extra) that keeps each value's text).
//!
//! This is what `#[serde(flatten)]` does, without its cost: a flattened struct is first buffered
//! whole into serde's private `Content` tree, then deserialized again from it — for a task
//! registry, every agent entry twice, and each unknown field a third time into its `Value`. Here
//! each field is read once, straight into its type or its `extra`.

/// Implements `Deserialize` for `$ty`: each `field: "key"` is read into the field of that name
/// (missing: an error naming the key, or `= default`), every other key goes into the `extra`
/// field, whose type implements [`Collect`](crate::extra::Collect).
#[macro_export]
macro_rules! deserialize_with_extra {
    ($ty:ident { $($field:ident : $key:literal $(= $default:expr)?),* $(,)? }) => {
        impl<'de> $crate::__serde::Deserialize<'de> for $ty {
            fn deserialize<D: $crate::__serde::Deserializer<'de>>(
                d: D,
            ) -> Result<Self, D::Error> {
                struct Fields;
                impl<'de> $crate::__serde::de::Visitor<'de> for Fields {
                    type Value = $ty;

                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str(concat!("an object (", stringify!($ty), ")"))
                    }

                    fn visit_map<A: $crate::__serde::de::MapAccess<'de>>(
                        self,
                        mut map: A,
                    ) -> Result<$ty, A::Error> {
                        $(let mut $field = None;)*
                        let mut extra = Default::default();
                        while let Some(key) = map.next_key::<$crate::fields::Key<'de>>()? {
                            match key.as_str() {
                                $($key => {
                                    if $field.is_some() {
                                        return Err(
                                            <A::Error as $crate::__serde::de::Error>::duplicate_field($key),
                                        );
                                    }
                                    $field = Some(map.next_value()?);
                                })*
                                other => $crate::extra::Collect::collect(&mut extra, other, &mut map)?,
                            }
                        }
                        Ok($ty {
                            $($field: match $field {
                                Some(value) => value,
                                None => $crate::deserialize_with_extra!(@missing $key $(, $default)?),
                            },)*
                            extra,
                        })
                    }
                }
                d.deserialize_map(Fields)
            }
        }
    };
    (@missing $key:literal) => {
        return Err($crate::__serde::de::Error::missing_field($key))
    };
    (@missing $key:literal, $default:expr) => {
        $default
    };
}

/// A key as the deserializer gives it: borrowed from the input when it can be (serde_json's
/// `from_str` and `from_slice`, for a key without escapes), so that reading a record allocates
/// nothing for its keys.
#[doc(hidden)]
#[derive(Debug)]
pub enum Key<'de> {
    /// Borrowed from the input.
    Borrowed(&'de str),
    /// Copied: unescaped, or from a reader.
    Owned(String),
}

impl Key<'_> {
    /// The key.
    pub fn as_str(&self) -> &str {
        match self {
            Key::Borrowed(k) => k,
            Key::Owned(k) => k,
        }
    }
}

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Key<'de>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a key")
            }

            fn visit_borrowed_str<E>(self, k: &'de str) -> Result<Key<'de>, E> {
                Ok(Key::Borrowed(k))
            }

            fn visit_str<E>(self, k: &str) -> Result<Key<'de>, E> {
                Ok(Key::Owned(k.to_owned()))
            }

            fn visit_string<E>(self, k: String) -> Result<Key<'de>, E> {
                Ok(Key::Owned(k))
            }
        }
        d.deserialize_str(Visit)
    }
}
