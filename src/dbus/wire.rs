//! The D-Bus wire format: values, their signatures, and whole messages,
//! written little-endian and read in either byte order. Only what a client
//! of systemd's manager needs: the basic types, arrays, structs and
//! variants (no fds, no doubles).

/// A D-Bus value. Arrays carry their element signature, so an empty one
/// still has a type (`a(sv)` with no properties).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Byte(u8),
    Bool(bool),
    I32(i32),
    U32(u32),
    I64(i64),
    U64(u64),
    Str(String),
    Path(String),
    Sig(String),
    Array(String, Vec<Value>),
    Struct(Vec<Value>),
    Variant(Box<Value>),
}

impl Value {
    /// This value's signature.
    pub fn signature(&self) -> String {
        match self {
            Value::Byte(_) => "y".into(),
            Value::Bool(_) => "b".into(),
            Value::I32(_) => "i".into(),
            Value::U32(_) => "u".into(),
            Value::I64(_) => "x".into(),
            Value::U64(_) => "t".into(),
            Value::Str(_) => "s".into(),
            Value::Path(_) => "o".into(),
            Value::Sig(_) => "g".into(),
            Value::Array(elem, _) => format!("a{elem}"),
            Value::Struct(fields) => {
                let inner: String = fields.iter().map(Value::signature).collect();
                format!("({inner})")
            }
            Value::Variant(_) => "v".into(),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) | Value::Path(s) | Value::Sig(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_u32(&self) -> Option<u32> {
        match self {
            Value::U32(v) => Some(*v),
            _ => None,
        }
    }
}

/// A message that does not follow the wire format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed D-Bus message: {0}")]
pub struct Malformed(pub String);

fn bad<T>(what: &str) -> Result<T, Malformed> {
    Err(Malformed(what.to_string()))
}

/// The alignment of the first type in `sig`.
fn alignment(code: u8) -> usize {
    match code {
        b'n' | b'q' => 2,
        b'b' | b'i' | b'u' | b's' | b'o' | b'a' | b'h' => 4,
        b'x' | b't' | b'd' | b'(' | b'{' => 8,
        _ => 1,
    }
}

/// Writes values at their alignment, counted from the message's start.
#[derive(Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    fn pad(&mut self, align: usize) {
        while !self.buf.len().is_multiple_of(align) {
            self.buf.push(0);
        }
    }

    fn u32_at(&mut self, at: usize, v: u32) {
        self.buf[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }

    fn string(&mut self, s: &str) {
        self.pad(4);
        self.buf.extend_from_slice(&(s.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }

    fn signature(&mut self, s: &str) {
        self.buf.push(s.len() as u8);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }

    pub fn value(&mut self, v: &Value) {
        match v {
            Value::Byte(b) => self.buf.push(*b),
            Value::Bool(b) => self.fixed(4, &u32::from(*b).to_le_bytes()),
            Value::I32(n) => self.fixed(4, &n.to_le_bytes()),
            Value::U32(n) => self.fixed(4, &n.to_le_bytes()),
            Value::I64(n) => self.fixed(8, &n.to_le_bytes()),
            Value::U64(n) => self.fixed(8, &n.to_le_bytes()),
            Value::Str(s) | Value::Path(s) => self.string(s),
            Value::Sig(s) => self.signature(s),
            Value::Array(elem, items) => {
                self.pad(4);
                let len_at = self.buf.len();
                self.buf.extend_from_slice(&[0; 4]);
                // The length excludes the padding before the first element.
                self.pad(alignment(elem.as_bytes().first().copied().unwrap_or(b'y')));
                let start = self.buf.len();
                for item in items {
                    self.value(item);
                }
                let len = (self.buf.len() - start) as u32;
                self.u32_at(len_at, len);
            }
            Value::Struct(fields) => {
                self.pad(8);
                for f in fields {
                    self.value(f);
                }
            }
            Value::Variant(inner) => {
                self.signature(&inner.signature());
                self.value(inner);
            }
        }
    }

    fn fixed(&mut self, align: usize, bytes: &[u8]) {
        self.pad(align);
        self.buf.extend_from_slice(bytes);
    }
}

/// Reads values of a given signature from a message in its byte order.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    big: bool,
    /// Nesting left: the spec allows 32 levels of arrays and of structs.
    depth: u32,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8], pos: usize, big: bool) -> Reader<'a> {
        Reader {
            buf,
            pos,
            big,
            depth: 64,
        }
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    fn align(&mut self, a: usize) -> Result<(), Malformed> {
        let to = self.pos.next_multiple_of(a);
        if to > self.buf.len() {
            return bad("truncated padding");
        }
        self.pos = to;
        Ok(())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let Some(end) = end else {
            return bad("truncated value");
        };
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32, Malformed> {
        self.align(4)?;
        let b: [u8; 4] = self
            .take(4)?
            .try_into()
            .map_err(|_| Malformed("u32".into()))?;
        Ok(if self.big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }

    fn u64(&mut self) -> Result<u64, Malformed> {
        self.align(8)?;
        let b: [u8; 8] = self
            .take(8)?
            .try_into()
            .map_err(|_| Malformed("u64".into()))?;
        Ok(if self.big {
            u64::from_be_bytes(b)
        } else {
            u64::from_le_bytes(b)
        })
    }

    fn text(&mut self, len: usize) -> Result<String, Malformed> {
        let bytes = self.take(len)?;
        if self.take(1)? != [0] {
            return bad("string without its NUL");
        }
        String::from_utf8(bytes.to_vec()).map_err(|_| Malformed("string is not UTF-8".into()))
    }

    fn signature_text(&mut self) -> Result<String, Malformed> {
        let len = usize::from(self.take(1)?[0]);
        self.text(len)
    }

    /// One value of the complete type at the start of `sig`; returns it
    /// and the rest of the signature.
    pub fn value<'s>(&mut self, sig: &'s str) -> Result<(Value, &'s str), Malformed> {
        let code = *sig
            .as_bytes()
            .first()
            .ok_or(Malformed("empty signature".into()))?;
        let rest = &sig[1..];
        let v = match code {
            b'y' => Value::Byte(self.take(1)?[0]),
            b'b' => Value::Bool(self.u32()? != 0),
            b'i' => Value::I32(self.u32()? as i32),
            b'u' => Value::U32(self.u32()?),
            b'x' => Value::I64(self.u64()? as i64),
            b't' => Value::U64(self.u64()?),
            b's' | b'o' => {
                let len = self.u32()? as usize;
                let s = self.text(len)?;
                if code == b's' {
                    Value::Str(s)
                } else {
                    Value::Path(s)
                }
            }
            b'g' => Value::Sig(self.signature_text()?),
            b'v' => {
                let inner = self.signature_text()?;
                let (v, left) = self.nested(|r| r.value(&inner))?;
                if !left.is_empty() {
                    return bad("variant holds more than one type");
                }
                Value::Variant(Box::new(v))
            }
            b'a' => return self.array(rest),
            b'(' | b'{' => return self.structure(rest, if code == b'(' { b')' } else { b'}' }),
            _ => return bad("unknown type code"),
        };
        Ok((v, rest))
    }

    fn nested<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, Malformed>,
    ) -> Result<T, Malformed> {
        if self.depth == 0 {
            return bad("nested too deep");
        }
        self.depth -= 1;
        let out = f(self);
        self.depth += 1;
        out
    }

    fn array<'s>(&mut self, elem_and_rest: &'s str) -> Result<(Value, &'s str), Malformed> {
        let len = self.u32()? as usize;
        if len > 64 << 20 {
            return bad("array over 64 MiB");
        }
        let first = *elem_and_rest
            .as_bytes()
            .first()
            .ok_or(Malformed("array of nothing".into()))?;
        self.align(alignment(first))?;
        let end = self.pos.checked_add(len).filter(|&e| e <= self.buf.len());
        let end = end.ok_or(Malformed("truncated array".into()))?;
        let elem_len = single_type_len(elem_and_rest)?;
        let (elem, rest) = elem_and_rest.split_at(elem_len);
        let mut items = Vec::new();
        while self.pos < end {
            let (v, _) = self.nested(|r| r.value(elem))?;
            items.push(v);
        }
        if self.pos != end {
            return bad("array length does not match its elements");
        }
        Ok((Value::Array(elem.to_string(), items), rest))
    }

    fn structure<'s>(
        &mut self,
        after_open: &'s str,
        close: u8,
    ) -> Result<(Value, &'s str), Malformed> {
        self.align(8)?;
        let mut sig = after_open;
        let mut fields = Vec::new();
        loop {
            match sig.as_bytes().first() {
                Some(&c) if c == close => break,
                Some(_) => {
                    let (v, rest) = self.nested(|r| r.value(sig))?;
                    fields.push(v);
                    sig = rest;
                }
                None => return bad("unclosed struct"),
            }
        }
        Ok((Value::Struct(fields), &sig[1..]))
    }
}

/// The length of the single complete type at the start of `sig`.
pub fn single_type_len(sig: &str) -> Result<usize, Malformed> {
    let b = sig.as_bytes();
    let mut depth = 0usize;
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'a' => continue,
            b'(' | b'{' => depth += 1,
            b')' | b'}' => depth = depth.checked_sub(1).ok_or(Malformed("unbalanced".into()))?,
            _ => {}
        }
        if depth == 0 {
            return Ok(i + 1);
        }
    }
    bad("incomplete type")
}

/// Message types.
pub const METHOD_CALL: u8 = 1;
pub const METHOD_RETURN: u8 = 2;
pub const ERROR: u8 = 3;
pub const SIGNAL: u8 = 4;

/// A message as read: its type, serial, header fields and body.
#[derive(Debug, Clone, Default)]
pub struct Message {
    pub kind: u8,
    pub serial: u32,
    pub reply_serial: Option<u32>,
    pub path: Option<String>,
    pub interface: Option<String>,
    pub member: Option<String>,
    pub error_name: Option<String>,
    pub signature: String,
    pub body: Vec<Value>,
}

/// A method call, serialized: `destination`'s `interface.member` on
/// `path` with `args`.
pub fn method_call(
    serial: u32,
    destination: &str,
    path: &str,
    interface: &str,
    member: &str,
    args: &[Value],
) -> Vec<u8> {
    let mut body = Writer::default();
    for a in args {
        body.value(a);
    }
    let signature: String = args.iter().map(Value::signature).collect();
    let field =
        |code: u8, v: Value| Value::Struct(vec![Value::Byte(code), Value::Variant(Box::new(v))]);
    let mut fields = vec![
        field(1, Value::Path(path.into())),
        field(2, Value::Str(interface.into())),
        field(3, Value::Str(member.into())),
        field(6, Value::Str(destination.into())),
    ];
    if !signature.is_empty() {
        fields.push(field(8, Value::Sig(signature)));
    }
    let mut w = Writer::default();
    w.buf.extend_from_slice(&[b'l', METHOD_CALL, 0, 1]);
    w.buf
        .extend_from_slice(&(body.buf.len() as u32).to_le_bytes());
    w.buf.extend_from_slice(&serial.to_le_bytes());
    w.value(&Value::Array("(yv)".into(), fields));
    w.pad(8);
    w.buf.extend_from_slice(&body.buf);
    w.buf
}

/// The length of the message at the start of `buf`, once its fixed header
/// is there (16 bytes); messages over `max` are refused.
pub fn message_len(buf: &[u8], max: usize) -> Result<Option<usize>, Malformed> {
    if buf.len() < 16 {
        return Ok(None);
    }
    let big = match buf[0] {
        b'l' => false,
        b'B' => true,
        _ => return bad("unknown byte order"),
    };
    let word = |at: usize| {
        let b = [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]];
        (if big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }) as usize
    };
    let (body, fields) = (word(4), word(12));
    let total = 16usize
        .checked_add(fields)
        .map(|n| n.next_multiple_of(8))
        .and_then(|n| n.checked_add(body))
        .filter(|&n| n <= max);
    total.map(Some).ok_or(Malformed("message too large".into()))
}

/// Read one whole message (`buf` holds exactly it).
pub fn parse(buf: &[u8]) -> Result<Message, Malformed> {
    if buf.len() < 16 {
        return bad("short header");
    }
    let big = buf[0] == b'B';
    let mut r = Reader::new(buf, 4, big);
    let body_len = r.u32()? as usize;
    let serial = r.u32()?;
    let (fields, _) = r.value("a(yv)")?;
    r.align(8)?;
    let mut m = Message {
        kind: buf[1],
        serial,
        ..Default::default()
    };
    if let Value::Array(_, fields) = fields {
        for f in fields {
            header_field(&mut m, f);
        }
    }
    let body_start = r.pos();
    if buf.len() - body_start != body_len {
        return bad("body length does not match");
    }
    let owned = m.signature.clone();
    let mut sig: &str = &owned;
    while !sig.is_empty() {
        let (v, rest) = r.value(sig)?;
        m.body.push(v);
        sig = rest;
    }
    Ok(m)
}

fn header_field(m: &mut Message, f: Value) {
    let Value::Struct(parts) = f else { return };
    let [Value::Byte(code), Value::Variant(v)] = parts.as_slice() else {
        return;
    };
    let text = v.as_str().map(str::to_string);
    match code {
        1 => m.path = text,
        2 => m.interface = text,
        3 => m.member = text,
        4 => m.error_name = text,
        5 => m.reply_serial = v.as_u32(),
        8 => m.signature = text.unwrap_or_default(),
        _ => {}
    }
}
