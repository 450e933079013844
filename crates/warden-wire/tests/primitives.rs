//! The primitive codec: integers, bools, BigSize (BOLT-01 vectors), optional fields, and the
//! small helper types.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

mod common;

use common::hex;
use warden_wire::codec::{Reader, WireField, Writer};
use warden_wire::msg::LogLevel;
use warden_wire::{ChannelType, DecodeError, Permissions, WireString};

#[test]
fn integers_are_big_endian() {
    let mut w = Writer::new();
    w.write_u16(0x0102);
    w.write_u32(0x0304_0506);
    w.write_u64(0x0708_090a_0b0c_0d0e);
    w.write_bool(true);
    assert_eq!(w.as_bytes(), hex("0102030405060708090a0b0c0d0e01"));
    let bytes = w.into_bytes();
    let mut r = Reader::new(&bytes);
    assert_eq!(r.read_u16(), Ok(0x0102));
    assert_eq!(r.read_u32(), Ok(0x0304_0506));
    assert_eq!(r.read_u64(), Ok(0x0708_090a_0b0c_0d0e));
    assert_eq!(r.read_bool(), Ok(true));
    assert!(r.finish().is_ok());
    assert_eq!(r.read_u8(), Err(DecodeError::Truncated { offset: 15, needed: 1, remaining: 0 }));
}

/// BOLT-01 Appendix A, BigSize encoding and decoding tests.
#[test]
fn bigsize_follows_bolt01() {
    let ok: &[(u64, &str)] = &[
        (0, "00"),
        (252, "fc"),
        (253, "fd00fd"),
        (65535, "fdffff"),
        (65536, "fe00010000"),
        (4294967295, "feffffffff"),
        (4294967296, "ff0000000100000000"),
        (18446744073709551615, "ffffffffffffffffff"),
    ];
    for (v, h) in ok {
        let mut w = Writer::new();
        w.write_bigsize(*v);
        assert_eq!(w.as_bytes(), hex(h), "{v}");
        let b = hex(h);
        let mut r = Reader::new(&b);
        assert_eq!(r.read_bigsize(), Ok(*v), "{h}");
        assert!(r.is_empty());
    }
    for h in ["fd00fc", "fe0000ffff", "ff00000000ffffffff"] {
        let b = hex(h);
        assert_eq!(
            Reader::new(&b).read_bigsize(),
            Err(DecodeError::NonMinimalBigSize { offset: 0 }),
            "{h}"
        );
    }
    for h in ["fd00", "feffff", "ffffffffff", "", "fd", "fe", "ff"] {
        let b = hex(h);
        assert!(
            matches!(Reader::new(&b).read_bigsize(), Err(DecodeError::Truncated { .. })),
            "{h}"
        );
    }
}

#[test]
fn optional_fields_have_a_strict_presence_byte() {
    let mut w = Writer::new();
    Some(7u32).write(&mut w).unwrap();
    None::<u32>.write(&mut w).unwrap();
    assert_eq!(w.as_bytes(), hex("010000000700"));
    let b = hex("0200000007");
    assert_eq!(
        Option::<u32>::read(&mut Reader::new(&b)),
        Err(DecodeError::InvalidBool { offset: 0, value: 2 })
    );
}

#[test]
fn sub_readers_keep_absolute_offsets() {
    let b = hex("000102030405");
    let mut r = Reader::new(&b);
    r.read_u16().unwrap();
    let mut sub = r.sub_reader(3).unwrap();
    assert_eq!(sub.offset(), 2);
    sub.read_u16().unwrap();
    assert_eq!(sub.read_u16(), Err(DecodeError::Truncated { offset: 4, needed: 2, remaining: 1 }));
    assert_eq!(r.offset(), 5);
    assert_eq!(
        r.sub_reader(2).unwrap_err(),
        DecodeError::Truncated { offset: 5, needed: 2, remaining: 1 }
    );
}

#[test]
fn channel_type_bits_use_bolt09_numbering() {
    // option_static_remotekey (12) and option_anchors_zero_fee_htlc_tx (22).
    let t = ChannelType(hex("401000"));
    assert!(t.has_bit(12));
    assert!(t.has_bit(22));
    assert!(!t.has_bit(13));
    assert!(!t.has_bit(200));
    assert!(!ChannelType::default().has_bit(0));
}

#[test]
fn small_types_behave() {
    assert!(Permissions(0x418).contains(Permissions::MASTER));
    assert!(!Permissions(0x18).contains(Permissions::MASTER));
    assert_eq!(LogLevel::from_u8(6), Some(LogLevel::BROKEN));
    assert_eq!(LogLevel::from_u8(7), None);
    let s = WireString::try_from("caf\u{e9}").unwrap();
    assert_eq!(s.as_str(), Some("caf\u{e9}"));
    assert_eq!(format!("{s:?}"), "WireString(\"caf\u{e9}\")");
    assert_eq!(WireString::new(vec![b'a', 0]).unwrap_err().index, 1);
    let n = warden_wire::NodeId::from(common::pk(1));
    assert_eq!(n.to_public_key(), Some(common::pk(1)));
    assert_eq!(n.to_string().len(), 66);
    let scid = warden_wire::ShortChannelId((800_000 << 40) | (1234 << 16) | 1);
    assert_eq!(scid.to_string(), "800000x1234x1");
}
