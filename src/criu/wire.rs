//! The protobuf (proto2) wire format, as much as CRIU's RPC needs: varints,
//! length-delimited fields, nested messages; unknown fields are skipped.
//! Input is whatever bytes a `criu swrk` peer sent: every length and
//! count is checked, nothing panics.

/// Bytes that are not a well-formed message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed CRIU message: {0}")]
pub struct Malformed(pub &'static str);

/// A message being written.
#[derive(Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    fn key(&mut self, field: u32, wire_type: u8) {
        self.varint((u64::from(field) << 3) | u64::from(wire_type));
    }

    /// An unsigned varint field (uint32, enums).
    pub fn uint(&mut self, field: u32, v: u64) {
        self.key(field, 0);
        self.varint(v);
    }

    /// An int32 field: a negative one is sign-extended to ten bytes, as
    /// protobuf encodes it.
    pub fn int32(&mut self, field: u32, v: i32) {
        self.uint(field, i64::from(v) as u64);
    }

    pub fn bool(&mut self, field: u32, v: bool) {
        self.uint(field, u64::from(v));
    }

    /// A length-delimited field: a string or bytes.
    pub fn bytes(&mut self, field: u32, b: &[u8]) {
        self.key(field, 2);
        self.varint(b.len() as u64);
        self.buf.extend_from_slice(b);
    }

    /// A nested message, written by `f`.
    pub fn message(&mut self, field: u32, f: impl FnOnce(&mut Writer)) {
        let mut inner = Writer::default();
        f(&mut inner);
        self.bytes(field, &inner.buf);
    }
}

/// One field of a message read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    /// fixed64, fixed32: not in CRIU's messages, read only to skip them.
    Fixed,
}

impl Value<'_> {
    /// An int32 (or enum): varints over 32 bits keep their low 32, as
    /// protobuf's own readers do.
    pub fn int32(&self) -> Result<i32, Malformed> {
        match *self {
            Value::Varint(v) => Ok(v as u32 as i32),
            _ => Err(Malformed("expected a varint")),
        }
    }

    pub fn bool(&self) -> Result<bool, Malformed> {
        match *self {
            Value::Varint(v) => Ok(v != 0),
            _ => Err(Malformed("expected a varint")),
        }
    }

    pub fn bytes(&self) -> Result<&[u8], Malformed> {
        match *self {
            Value::Bytes(b) => Ok(b),
            _ => Err(Malformed("expected a length-delimited field")),
        }
    }

    pub fn string(&self) -> Result<String, Malformed> {
        Ok(String::from_utf8_lossy(self.bytes()?).into_owned())
    }
}

/// The fields of a message, in order; an error ends it.
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf }
    }

    fn varint(&mut self) -> Result<u64, Malformed> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let (&b, rest) = self
                .buf
                .split_first()
                .ok_or(Malformed("truncated varint"))?;
            self.buf = rest;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(Malformed("varint over ten bytes"))
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], Malformed> {
        let n = usize::try_from(n).map_err(|_| Malformed("length too large"))?;
        if n > self.buf.len() {
            return Err(Malformed("truncated field"));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
}

impl<'a> Iterator for Reader<'a> {
    type Item = Result<(u32, Value<'a>), Malformed>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.buf.is_empty() {
            return None;
        }
        let field = (|| {
            let key = self.varint()?;
            let number =
                u32::try_from(key >> 3).map_err(|_| Malformed("field number too large"))?;
            let value = match key & 7 {
                0 => Value::Varint(self.varint()?),
                1 => {
                    self.take(8)?;
                    Value::Fixed
                }
                2 => {
                    let n = self.varint()?;
                    Value::Bytes(self.take(n)?)
                }
                5 => {
                    self.take(4)?;
                    Value::Fixed
                }
                _ => return Err(Malformed("unknown wire type")),
            };
            Ok((number, value))
        })();
        if field.is_err() {
            // Nothing after a malformed field can be trusted.
            self.buf = &[];
        }
        Some(field)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_as_protobuf_encodes_them() {
        let mut w = Writer::default();
        w.uint(1, 10);
        assert_eq!(w.into_bytes(), [0x08, 0x0a], "a VERSION request");
        let mut w = Writer::default();
        w.int32(2, -1);
        w.uint(3, 300);
        w.bytes(4, b"hi");
        w.message(5, |m| m.bool(1, true));
        let b = w.into_bytes();
        assert_eq!(
            &b[..11],
            &[
                0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01
            ]
        );
        let fields: Vec<_> = Reader::new(&b).collect::<Result<_, _>>().unwrap();
        assert_eq!(fields[0].1.int32(), Ok(-1));
        assert_eq!(fields[1], (3, Value::Varint(300)));
        assert_eq!(fields[2].1.string(), Ok("hi".into()));
        let inner: Vec<_> = Reader::new(fields[3].1.bytes().unwrap())
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(inner, [(1, Value::Varint(1))]);
    }

    #[test]
    fn bad_bytes_are_errors_not_panics() {
        for bad in [
            &[0x08][..],             // key without a value
            &[0x0a, 0x05, b'a'][..], // length past the end
            &[0x0b][..],             // wire type 3 (groups)
            &[
                0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
            ][..],
            &[0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f][..],
        ] {
            let r: Result<Vec<_>, _> = Reader::new(bad).collect();
            assert!(r.is_err(), "{bad:?}");
        }
        // Fixed-width fields are skipped.
        let ok: Vec<_> = Reader::new(&[0x09, 1, 2, 3, 4, 5, 6, 7, 8, 0x15, 1, 2, 3, 4])
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(ok, [(1, Value::Fixed), (2, Value::Fixed)]);
    }
}
