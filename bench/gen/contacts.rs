//! The generator of the contact files that the benchmarks (through the
//! `gen_contacts` example) and the integration tests (`tests/it/generated.rs`)
//! import: a CRM's nightly export as customers drop it, with a chosen share of
//! rows that each break exactly one validation rule, and the counts dropfeed
//! must report for it (`Expected`).
//!
//! The file is semicolon-separated, with the 20 columns that
//! `examples/mapping.yaml` maps (`HEADER`); French and English data with
//! accents; quoted cells (a `;` or a `"` in an address, a structure, a display
//! name); empty cells in the shares an export has; UTF-8, UTF-8 with a BOM or
//! Windows-1252; LF or CRLF line ends.
//!
//! Row `i` (from `start` to `start + rows`):
//! - its e-mail address, the contact's identity, and its customer id depend on
//!   `i` alone, never on the seed: files of overlapping ranges share their
//!   addresses, which makes the second file of an upsert. Addresses hold `i`,
//!   so they are unique in a file.
//! - every other cell is drawn from the ChaCha8 stream number `i` of the key
//!   `seed`: row `i` of two files with the same seed is the same line whatever
//!   their start, and another seed draws other values.
//! - whether it is broken, and how, is drawn after its cells, so `invalid`
//!   changes only the rows it breaks.
//!
//! Same options, same bytes, on any machine and with any later `rand`:
//! ChaCha8 is a specified algorithm (rand_chacha keeps its output stable), and
//! the draws from it go through `below` and `chance` here rather than through
//! `rand`'s distributions, whose algorithms may change between versions.
//! Changing a table or the order of the draws changes every file: benchmark
//! figures compare only between files of the same generator.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Write};

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use serde::Serialize;

/// The bytes the file is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Encoding {
    #[value(name = "utf-8")]
    Utf8,
    /// UTF-8 after a byte-order mark, as Excel saves "CSV UTF-8".
    #[value(name = "utf-8-sig")]
    Utf8Sig,
    /// Windows-1252, as Excel saves "CSV (point-virgule)" on a French Windows.
    #[value(name = "cp1252")]
    Cp1252,
}

#[derive(Debug, Clone)]
pub struct Options {
    /// Lines after the header.
    pub rows: u64,
    /// The index of the first row: it names the addresses (see the header).
    pub start: u64,
    /// The share of rows that break one rule, from 0 to 1.
    pub invalid: f64,
    pub encoding: Encoding,
    /// CRLF line ends instead of LF.
    pub crlf: bool,
    /// The key of every cell but the addresses and customer ids.
    pub seed: u64,
}

impl Default for Options {
    fn default() -> Options {
        Options { rows: 1000, start: 0, invalid: 0.02, encoding: Encoding::Utf8, crlf: false, seed: 42 }
    }
}

/// What dropfeed must report for a generated file imported with
/// `examples/mapping.yaml` into a tenant without contacts (the bad languages
/// are none of FR, EN and DE, which a test tenant accepts). Only codes that
/// occur are keys.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Expected {
    /// Rejected rows by rule code: each broken row breaks exactly one rule.
    pub rejected: BTreeMap<&'static str, u64>,
    pub rejected_total: u64,
    /// The corrections of the accepted rows by rule code, as dropfeed counts
    /// them for the rows it writes: `name.empty` once per empty name.
    pub warnings_by_code: BTreeMap<&'static str, u64>,
    pub rows: u64,
}

impl Expected {
    /// Counts one more row.
    pub fn add(&mut self, fate: Fate) {
        self.rows += 1;
        match fate.broken {
            Some(code) => {
                *self.rejected.entry(code).or_default() += 1;
                self.rejected_total += 1;
            }
            None => {
                for code in fate.warning_codes() {
                    *self.warnings_by_code.entry(code).or_default() += 1;
                }
            }
        }
    }
}

/// What becomes of one row in dropfeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fate {
    /// The code of the rule the row breaks, if it is broken.
    pub broken: Option<&'static str>,
    /// The corrections dropfeed makes when it writes the row: bit `b` set for
    /// the code `WARNINGS[b]`.
    pub warnings: u8,
}

/// The warning of each bit of `Fate::warnings`, as dropfeed's
/// `validate::WARNINGS` (an empty first name and an empty last name are one
/// code each time).
pub const WARNINGS: [&str; 5] = ["display.empty", "civility.empty", "name.empty", "name.empty", "language.empty"];

impl Fate {
    pub fn warning_codes(self) -> impl Iterator<Item = &'static str> {
        WARNINGS.into_iter().enumerate().filter(move |(bit, _)| self.warnings & (1 << bit) != 0).map(|(_, code)| code)
    }
}

/// The fate of each row of the file `opts` describes, in order, without
/// writing it.
pub fn fates(opts: &Options) -> impl Iterator<Item = Fate> + '_ {
    let mut line = Line::default();
    (opts.start..opts.start + opts.rows).map(move |index| draw(opts, index, &mut line))
}

/// The counts of the file `opts` describes, without writing it.
pub fn expected(opts: &Options) -> Expected {
    let mut expected = Expected::default();
    fates(opts).for_each(|fate| expected.add(fate));
    expected
}

/// Writes the file to `out` and returns what dropfeed must report for it.
pub fn generate(opts: &Options, mut out: impl Write) -> io::Result<Expected> {
    // Rows are formatted into a text chunk that is encoded and written once
    // full: one write (and for cp1252 one encoding) per 256 KiB, and no
    // allocation per row, since each cell reuses its own buffer.
    const CHUNK: usize = 256 << 10;
    let end = if opts.crlf { "\r\n" } else { "\n" };
    if opts.encoding == Encoding::Utf8Sig {
        out.write_all(b"\xEF\xBB\xBF")?;
    }
    let mut text = String::with_capacity(CHUNK + 4096);
    text.push_str(&HEADER.join(";"));
    text.push_str(end);
    let mut line = Line::default();
    let mut expected = Expected::default();
    for index in opts.start..opts.start + opts.rows {
        expected.add(draw(opts, index, &mut line));
        line.write_to(&mut text);
        text.push_str(end);
        if text.len() >= CHUNK {
            write_chunk(opts.encoding, &text, &mut out)?;
            text.clear();
        }
    }
    write_chunk(opts.encoding, &text, &mut out)?;
    out.flush()?;
    Ok(expected)
}

fn write_chunk(encoding: Encoding, text: &str, out: &mut impl Write) -> io::Result<()> {
    if encoding != Encoding::Cp1252 {
        return out.write_all(text.as_bytes());
    }
    // encoding_rs would write a character that cp1252 lacks as `&#…;`, whose
    // digits would break the name rule on rows counted as valid: refuse it
    // (the tables hold none, a unit test checks).
    let (bytes, _, unmappable) = encoding_rs::WINDOWS_1252.encode(text);
    if unmappable {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "a generated cell has no cp1252 form"));
    }
    out.write_all(&bytes)
}

/// The columns, in file order: exactly those `examples/mapping.yaml` maps.
pub const HEADER: [&str; 20] = [
    "email",
    "language",
    "display",
    "civility",
    "first_name",
    "last_name",
    "birthdate",
    "structure",
    "address",
    "postal_code",
    "town",
    "country",
    "phone",
    "mobile",
    "criteria_segment",
    "criteria_interest",
    "consent_newsletter",
    "consent_sms",
    "consent_partners",
    "customer_id",
];

const EMAIL: usize = 0;
const LANGUAGE: usize = 1;
const DISPLAY: usize = 2;
const CIVILITY: usize = 3;
const FIRST_NAME: usize = 4;
const LAST_NAME: usize = 5;
const BIRTHDATE: usize = 6;
const STRUCTURE: usize = 7;
const ADDRESS: usize = 8;
const POSTAL_CODE: usize = 9;
const TOWN: usize = 10;
const COUNTRY: usize = 11;
const PHONE: usize = 12;
const MOBILE: usize = 13;
const SEGMENT: usize = 14;
const INTEREST: usize = 15;
const CONSENTS: [usize; 3] = [16, 17, 18];
const CUSTOMER_ID: usize = 19;

/// First and last names with the ASCII spelling their addresses use. Every
/// character has a cp1252 form, and none is a digit.
const FIRST_NAMES: &[(&str, &str)] = &[
    ("Jean", "jean"),
    ("Marie", "marie"),
    ("Élodie", "elodie"),
    ("François", "francois"),
    ("Chloé", "chloe"),
    ("Luc", "luc"),
    ("Anaïs", "anais"),
    ("Hélène", "helene"),
    ("Zoë", "zoe"),
    ("Noël", "noel"),
    ("Gaëtan", "gaetan"),
    ("Inès", "ines"),
    ("Søren", "soren"),
    ("Björn", "bjorn"),
    ("José", "jose"),
    ("D'Arcy", "darcy"),
    ("Olivia", "olivia"),
    ("James", "james"),
    ("Mathéo", "matheo"),
    ("Léa", "lea"),
    ("Ana-María", "ana-maria"),
    ("Renée", "renee"),
    ("Jérôme", "jerome"),
    ("Cécile", "cecile"),
    ("Stéphane", "stephane"),
    ("Amélie", "amelie"),
    ("Benoît", "benoit"),
    ("Maëlle", "maelle"),
    ("Thérèse", "therese"),
    ("Aurélien", "aurelien"),
    ("Noémie", "noemie"),
    ("Jürgen", "jurgen"),
    ("Siobhán", "siobhan"),
    ("Emily", "emily"),
    ("William", "william"),
    ("Camille", "camille"),
];

const LAST_NAMES: &[(&str, &str)] = &[
    ("Tremblay", "tremblay"),
    ("Gagnon", "gagnon"),
    ("Roy", "roy"),
    ("Côté", "cote"),
    ("Bouchard", "bouchard"),
    ("Gauthier", "gauthier"),
    ("Morin", "morin"),
    ("Lavoie", "lavoie"),
    ("Gagné", "gagne"),
    ("Pelletier", "pelletier"),
    ("Bélanger", "belanger"),
    ("Lévesque", "levesque"),
    ("Müller", "muller"),
    ("O'Brien", "obrien"),
    ("Dupont-Moretti", "dupont-moretti"),
    ("Smith", "smith"),
    ("Da Silva", "dasilva"),
    ("Martin", "martin"),
    ("Dubois", "dubois"),
    ("Lefèvre", "lefevre"),
    ("Girard", "girard"),
    ("Mercier", "mercier"),
    ("Rousseau", "rousseau"),
    ("Chevalier", "chevalier"),
    ("Schäfer", "schafer"),
    ("Peeters", "peeters"),
    ("Van den Berg", "vandenberg"),
    ("MacDonald", "macdonald"),
    ("Núñez", "nunez"),
    ("Lebœuf", "leboeuf"),
    ("Doré", "dore"),
    ("Sørensen", "sorensen"),
];

const DOMAINS: &[&str] = &["example.com", "exemple.fr", "mail.ch", "courriel.qc.ca", "example.org", "exemple.be"];

struct Town {
    name: &'static str,
    postal_code: &'static str,
    iso: &'static str,
    /// The French and English names the country rule accepts.
    country_names: &'static [&'static str],
}

const FRANCE: &[&str] = &["France"];
const SWITZERLAND: &[&str] = &["Suisse", "Switzerland"];
const BELGIUM: &[&str] = &["Belgique", "Belgium"];
const CANADA: &[&str] = &["Canada"];
const BRAZIL: &[&str] = &["Brésil", "Brazil"];

const fn town(
    name: &'static str,
    postal_code: &'static str,
    iso: &'static str,
    names: &'static [&'static str],
) -> Town {
    Town { name, postal_code, iso, country_names: names }
}

/// Towns of the town rule (letters, spaces, `-`, `'`, `.`) with their postal
/// codes.
const TOWNS: &[Town] = &[
    town("Paris", "75011", "FR", FRANCE),
    town("Lyon", "69002", "FR", FRANCE),
    town("Marseille", "13001", "FR", FRANCE),
    town("Saint-Étienne", "42000", "FR", FRANCE),
    town("Bordeaux", "33000", "FR", FRANCE),
    town("Aix-en-Provence", "13100", "FR", FRANCE),
    town("Besançon", "25000", "FR", FRANCE),
    town("Nîmes", "30000", "FR", FRANCE),
    town("Genève", "1204", "CH", SWITZERLAND),
    town("Lausanne", "1003", "CH", SWITZERLAND),
    town("Zürich", "8001", "CH", SWITZERLAND),
    town("Neuchâtel", "2000", "CH", SWITZERLAND),
    town("La Chaux-de-Fonds", "2300", "CH", SWITZERLAND),
    town("Bruxelles", "1000", "BE", BELGIUM),
    town("Liège", "4000", "BE", BELGIUM),
    town("Louvain-la-Neuve", "1348", "BE", BELGIUM),
    town("Namur", "5000", "BE", BELGIUM),
    town("Montréal", "H2X 1Y4", "CA", CANADA),
    town("Québec", "G1R 4P5", "CA", CANADA),
    town("Trois-Rivières", "G9A 5H7", "CA", CANADA),
    town("Gatineau", "J8X 3X7", "CA", CANADA),
    town("St. John's", "A1C 5M2", "CA", CANADA),
    town("São Paulo", "01310-100", "BR", BRAZIL),
];

const STREETS: &[&str] = &[
    "rue de l'Église",
    "avenue des Champs-Élysées",
    "chemin du Lac",
    "boulevard Saint-Laurent",
    "rue du Marché",
    "place de la Gare",
    "Bahnhofstrasse",
    "rue Notre-Dame Ouest",
    "Main Street",
    "avenue Louise",
    "rue des Pâquerettes",
    "route de Genève",
    "chaussée de Waterloo",
    "côte des Neiges",
];

/// Values with their weights in percent.
const LANGUAGES: &[(&str, u32)] = &[("FR", 45), ("EN", 25), ("fr", 8), ("en", 5), ("Fr", 5), ("", 12)];
const CIVILITIES: &[(&str, u32)] =
    &[("MR", 33), ("MRS", 33), ("MISS", 5), ("MR_AND_MRS", 4), ("UNDEFINED", 5), ("Mrs", 4), ("mr", 4), ("", 12)];
const SEGMENTS: &[(&str, u32)] = &[("SEG_GOLD", 15), ("SEG_SILVER", 30), ("SEG_BRONZE", 30), ("", 25)];
const INTERESTS: &[(&str, u32)] =
    &[("INT_OPERA", 20), ("INT_JAZZ", 20), ("INT_THEATRE", 20), ("INT_SPORT", 20), ("", 20)];
const BOOLS: &[&str] = &["TRUE", "true", "T", "t", "FALSE", "false", "F", "f", ""];
/// How a display name addresses each civility.
const TITLES: &[(&str, &str)] =
    &[("MR", "Monsieur"), ("MRS", "Madame"), ("MISS", "Mademoiselle"), ("MR_AND_MRS", "Monsieur et Madame")];
const NICKNAMES: &[&str] = &["Lulu", "Bibi", "Jojo", "Cathy", "Bob"];
const ESTATES: &[&str] = &["Les Tilleuls", "Le Lac", "Chez Max", "L'Atelier"];

/// The rules a broken row breaks, one each, drawn evenly.
const BREAKS: [&str; 12] = [
    "email.format",
    "name.digits",
    "civility.unknown",
    "birthdate.format",
    "birthdate.future",
    "country.unknown",
    "address.partial",
    "consent.value",
    "language.unknown",
    "phone.format",
    "criteria.unknown",
    "town.format",
];
const BAD_CIVILITIES: &[&str] = &["DR", "Prof.", "Mme", "Herr", "M."];
const BAD_BIRTHDATES: &[&str] = &["1985-03-12", "31.02.1990", "1.2.1985", "12/03/1985", "15.13.1970"];
/// Names that are no country, or whose accent was dropped (the rule wants it).
const BAD_COUNTRIES: &[&str] = &["BRESIL", "Atlantide", "Suise", "Belgïque"];
/// Accepted by no tenant of the tests (one accepts DE besides FR and EN).
const BAD_LANGUAGES: &[&str] = &["IT", "ES", "NL", "PT", "français"];
const BAD_CONSENTS: &[&str] = &["yes", "oui", "1", "Y", "non"];
const BAD_PHONES: &[&str] = &["n/a", "+41 79 555 12 34 ext. 2", "01 23 45 67 8O", "inconnu"];

/// One row's cells, each a buffer reused from row to row.
struct Line {
    cells: [String; 20],
}

impl Default for Line {
    fn default() -> Line {
        Line { cells: std::array::from_fn(|_| String::with_capacity(48)) }
    }
}

impl Line {
    /// Appends the cells joined by `;`, quoting those with a `;` or a `"`.
    fn write_to(&self, text: &mut String) {
        for (i, cell) in self.cells.iter().enumerate() {
            if i > 0 {
                text.push(';');
            }
            if cell.contains([';', '"']) {
                text.push('"');
                for (j, part) in cell.split('"').enumerate() {
                    if j > 0 {
                        text.push_str("\"\"");
                    }
                    text.push_str(part);
                }
                text.push('"');
            } else {
                text.push_str(cell);
            }
        }
    }
}

/// A number below `n` from the stream. Multiply-shift without rejection:
/// the bias, below n / 2^32, does not matter for test data, and the
/// method is fixed here rather than by a crate.
fn below(rng: &mut ChaCha8Rng, n: usize) -> usize {
    ((u64::from(rng.next_u32()) * n as u64) >> 32) as usize
}

/// True with probability `p`: 53 random bits as a number in [0, 1).
fn chance(rng: &mut ChaCha8Rng, p: f64) -> bool {
    ((rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
}

fn pick<T: Copy>(rng: &mut ChaCha8Rng, values: &[T]) -> T {
    values[below(rng, values.len())]
}

fn weighted(rng: &mut ChaCha8Rng, values: &[(&'static str, u32)]) -> &'static str {
    let total: u32 = values.iter().map(|(_, w)| w).sum();
    let mut n = below(rng, total as usize) as u32;
    for (value, weight) in values {
        if n < *weight {
            return value;
        }
        n -= weight;
    }
    unreachable!("n < total")
}

/// SplitMix64: the identity's draws from the row index alone.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn by_hash<T: Copy>(h: u64, values: &[T]) -> T {
    values[((u128::from(h) * values.len() as u128) >> 64) as usize]
}

/// Appends the non-empty parts separated by spaces.
fn join(out: &mut String, parts: &[&str]) {
    for part in parts.iter().filter(|p| !p.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(part);
    }
}

/// An address, drawn for every row: the breaks that need one
/// (`address.partial`, `town.format`) give it to a row that has none.
struct Address {
    number: usize,
    street: &'static str,
    /// 0: none, 1: a building, 2: a flat (after a `;`, hence quoted).
    suffix: usize,
    suffix_value: usize,
    town: &'static Town,
    country: &'static str,
}

impl Address {
    fn write(&self, cells: &mut [String; 20]) {
        let _ = write!(cells[ADDRESS], "{} {}", self.number, self.street);
        match self.suffix {
            1 => {
                let _ = write!(cells[ADDRESS], "; bât. {}", char::from(b'A' + self.suffix_value as u8 % 4));
            }
            2 => {
                let _ = write!(cells[ADDRESS], "; app. {}", 1 + self.suffix_value);
            }
            _ => {}
        }
        cells[POSTAL_CODE].push_str(self.town.postal_code);
        cells[TOWN].push_str(self.town.name);
        cells[COUNTRY].push_str(self.country);
    }
}

/// Fills `line` with row `index` of the file `opts` describes and returns
/// its fate.
fn draw(opts: &Options, index: u64, line: &mut Line) -> Fate {
    let cells = &mut line.cells;
    for cell in cells.iter_mut() {
        cell.clear();
    }

    // The identity: the index alone.
    let h = mix(index);
    let (_, first) = by_hash(h, FIRST_NAMES);
    let (_, last) = by_hash(mix(h), LAST_NAMES);
    let domain = by_hash(mix(mix(h)), DOMAINS);
    let _ = write!(cells[EMAIL], "{first}.{last}.{index}@{domain}");
    let _ = write!(cells[CUSTOMER_ID], "C{index:09}");

    // Everything else: stream `index` of the seed, so that a row does not
    // depend on the rows before it.
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&opts.seed.to_le_bytes());
    let mut rng = ChaCha8Rng::from_seed(key);
    rng.set_stream(index);
    let r = &mut rng;

    cells[LANGUAGE].push_str(weighted(r, LANGUAGES));
    let civility = weighted(r, CIVILITIES);
    cells[CIVILITY].push_str(civility);
    let first = if below(r, 100) < 2 { "" } else { pick(r, FIRST_NAMES).0 };
    let last = if below(r, 100) < 1 { "" } else { pick(r, LAST_NAMES).0 };
    cells[FIRST_NAME].push_str(first);
    cells[LAST_NAME].push_str(last);
    let title = TITLES.iter().find(|(code, _)| code.eq_ignore_ascii_case(civility)).map_or("", |(_, title)| title);
    let display = &mut cells[DISPLAY];
    match below(r, 100) {
        0..8 => {}
        8..50 => join(display, &[first, last]),
        50..80 if !title.is_empty() => join(display, &[title, last]),
        50..80 => join(display, &[first, last]),
        80..98 => display.push_str(first),
        _ => {
            join(display, &[first]);
            let _ = write!(display, "{}\"{}\"", if first.is_empty() { "" } else { " " }, pick(r, NICKNAMES));
            join(display, &[last]);
        }
    }
    if below(r, 100) < 70 {
        let (day, month, year) = (1 + below(r, 28), 1 + below(r, 12), 1930 + below(r, 79));
        let _ = write!(cells[BIRTHDATE], "{day:02}.{month:02}.{year}");
    }

    let has_address = below(r, 100) < 80;
    let town = &TOWNS[below(r, TOWNS.len())];
    let address = Address {
        number: 1 + below(r, 300),
        street: pick(r, STREETS),
        suffix: match below(r, 100) {
            0..2 => 1,
            2..4 => 2,
            _ => 0,
        },
        suffix_value: below(r, 40),
        town,
        country: if below(r, 100) < 60 { town.iso } else { pick(r, town.country_names) },
    };
    let structure = below(r, 100) < 10;
    let (company, estate) = (below(r, 997), below(r, 100));
    if has_address {
        address.write(cells);
        if structure {
            let _ = write!(cells[STRUCTURE], "Société {company}");
            if estate < 15 {
                let _ = write!(cells[STRUCTURE], " \"{}\"", ESTATES[estate % ESTATES.len()]);
            }
        }
    }

    if below(r, 100) < 50 {
        let phone = &mut cells[PHONE];
        let _ = match below(r, 4) {
            0 => write!(
                phone,
                "+33 1 {:02} {:02} {:02} {:02}",
                below(r, 100),
                below(r, 100),
                below(r, 100),
                below(r, 100)
            ),
            1 => write!(phone, "+41 22 {:03} {:02} {:02}", below(r, 1000), below(r, 100), below(r, 100)),
            2 => write!(phone, "(514) 555-{:04}", below(r, 10000)),
            _ => write!(phone, "+32 2 {:03} {:02} {:02}", below(r, 1000), below(r, 100), below(r, 100)),
        };
    }
    if below(r, 100) < 40 {
        let mobile = &mut cells[MOBILE];
        let _ = match below(r, 4) {
            0 => {
                write!(mobile, "06 {:02} {:02} {:02} {:02}", below(r, 100), below(r, 100), below(r, 100), below(r, 100))
            }
            1 => write!(mobile, "+41 79 {:03} {:02} {:02}", below(r, 1000), below(r, 100), below(r, 100)),
            2 => write!(mobile, "+1 514 555 {:04}", below(r, 10000)),
            _ => write!(mobile, "+32 470 {:02} {:02} {:02}", below(r, 100), below(r, 100), below(r, 100)),
        };
    }
    cells[SEGMENT].push_str(weighted(r, SEGMENTS));
    cells[INTEREST].push_str(weighted(r, INTERESTS));
    for column in CONSENTS {
        cells[column].push_str(pick(r, BOOLS));
    }

    // The corrections of the row as drawn (a broken row is not written, so
    // what a break does to them does not matter).
    let mut warnings = 0;
    for (bit, column) in [DISPLAY, CIVILITY, FIRST_NAME, LAST_NAME, LANGUAGE].into_iter().enumerate() {
        if cells[column].is_empty() {
            warnings |= 1 << bit;
        }
    }
    let broken = chance(r, opts.invalid).then(|| break_one_rule(r, cells, &address, has_address));
    Fate { broken, warnings }
}

/// Replaces a cell, keeping its buffer.
fn set(cell: &mut String, value: &str) {
    cell.clear();
    cell.push_str(value);
}

/// Breaks one rule of a valid row and returns its code. Each change is
/// chosen to raise that rule alone: e.g. an unknown country on a row without
/// address is not also a partial address, since dropfeed does not count a
/// country it refused as part of one.
fn break_one_rule(r: &mut ChaCha8Rng, cells: &mut [String; 20], address: &Address, has_address: bool) -> &'static str {
    let code = pick(r, &BREAKS);
    match code {
        "email.format" => {
            let email = &mut cells[EMAIL];
            match below(r, 3) {
                0 => email.retain(|c| c != '@'),
                1 => email.insert(email.find('@').expect("an address has its @"), '@'),
                _ => email.insert(email.find('@').expect("an address has its @") + 1, ' '),
            }
        }
        "name.digits" => {
            let column = pick(r, &[FIRST_NAME, LAST_NAME]);
            let digit = char::from(b'1' + below(r, 9) as u8);
            cells[column].push(digit);
        }
        "civility.unknown" => set(&mut cells[CIVILITY], pick(r, BAD_CIVILITIES)),
        "birthdate.format" => set(&mut cells[BIRTHDATE], pick(r, BAD_BIRTHDATES)),
        // Two centuries ahead: in the future whatever day the test runs.
        "birthdate.future" => {
            let (day, month) = (1 + below(r, 28), 1 + below(r, 12));
            set(&mut cells[BIRTHDATE], "");
            let _ = write!(cells[BIRTHDATE], "{day:02}.{month:02}.2200");
        }
        "country.unknown" => set(&mut cells[COUNTRY], pick(r, BAD_COUNTRIES)),
        "address.partial" => {
            if !has_address {
                address.write(cells);
            }
            cells[POSTAL_CODE].clear();
        }
        "consent.value" => set(&mut cells[pick(r, &CONSENTS)], pick(r, BAD_CONSENTS)),
        "language.unknown" => set(&mut cells[LANGUAGE], pick(r, BAD_LANGUAGES)),
        "phone.format" => set(&mut cells[pick(r, &[PHONE, MOBILE])], pick(r, BAD_PHONES)),
        "criteria.unknown" => match below(r, 2) {
            0 => set(&mut cells[SEGMENT], "SEG_PLATINUM"),
            _ => set(&mut cells[INTEREST], "INT_CINEMA"),
        },
        "town.format" => {
            if !has_address {
                address.write(cells);
            }
            let _ = write!(cells[TOWN], " Cedex {}", 1 + below(r, 20));
        }
        _ => unreachable!("every code of BREAKS has its change"),
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(opts: &Options) -> (Vec<u8>, Expected) {
        let mut bytes = Vec::new();
        let expected = generate(opts, &mut bytes).unwrap();
        (bytes, expected)
    }

    fn lines(bytes: &[u8]) -> Vec<String> {
        String::from_utf8(bytes.to_vec()).unwrap().lines().map(str::to_owned).collect()
    }

    #[test]
    fn the_tables_hold_only_values_the_rules_accept_and_cp1252_can_encode() {
        let names = FIRST_NAMES.iter().chain(LAST_NAMES);
        for (name, ascii) in names {
            assert!(!name.chars().any(char::is_numeric), "{name}");
            assert!(!ascii.is_empty() && ascii.chars().all(|c| c.is_ascii_lowercase() || c == '-'), "{ascii}");
        }
        for town in TOWNS {
            assert!(
                town.name.chars().all(|c| c.is_alphabetic() || matches!(c, ' ' | '-' | '\'' | '.')),
                "{}",
                town.name
            );
            for country in town.country_names.iter().chain([&town.iso]) {
                assert_eq!(dropfeed::domain::country_code(country), Some(town.iso), "{country}");
            }
        }
        for country in BAD_COUNTRIES {
            assert_eq!(dropfeed::domain::country_code(country), None, "{country}");
        }
        for value in BAD_BIRTHDATES {
            assert_eq!(dropfeed::import::validate::parse_birthdate(value), None, "{value}");
        }
        for value in BAD_CONSENTS {
            assert_eq!(dropfeed::import::validate::parse_consent(value), None, "{value}");
        }
        for value in BOOLS.iter().filter(|v| !v.is_empty()) {
            assert!(dropfeed::import::validate::parse_consent(value).is_some(), "{value}");
        }
        let every = FIRST_NAMES.iter().chain(LAST_NAMES).map(|(name, _)| *name);
        let every = every.chain(
            TOWNS.iter().flat_map(|t| [t.name, t.postal_code].into_iter().chain(t.country_names.iter().copied())),
        );
        for text in
            every.chain(STREETS.iter().copied()).chain(ESTATES.iter().copied()).chain(BAD_LANGUAGES.iter().copied())
        {
            let (_, _, unmappable) = encoding_rs::WINDOWS_1252.encode(text);
            assert!(!unmappable, "{text} has no cp1252 form");
        }
    }

    #[test]
    fn the_same_options_write_the_same_bytes_and_another_seed_other_cells() {
        let opts = Options { rows: 500, invalid: 0.1, seed: 3, ..Options::default() };
        let (a, expected) = file(&opts);
        assert_eq!(file(&opts), (a.clone(), expected.clone()));
        assert_eq!(super::expected(&opts), expected);
        let (b, _) = file(&Options { seed: 4, ..opts.clone() });
        let (a, b) = (lines(&a), lines(&b));
        let differ = a.iter().zip(&b).filter(|(a, b)| a != b).count();
        assert!(differ > 490, "{differ} lines differ");
    }

    #[test]
    fn a_row_keeps_its_address_whatever_the_seed_and_its_cells_whatever_the_start() {
        let a = lines(&file(&Options { rows: 200, seed: 1, invalid: 0.0, ..Options::default() }).0);
        let b = lines(&file(&Options { rows: 200, start: 100, seed: 2, invalid: 0.0, ..Options::default() }).0);
        let c = lines(&file(&Options { rows: 200, start: 100, seed: 1, invalid: 0.0, ..Options::default() }).0);
        let email = |line: &String| line.split(';').next().unwrap().to_owned();
        for i in 0..100 {
            assert_eq!(email(&a[101 + i]), email(&b[1 + i]));
            assert_eq!(a[101 + i], c[1 + i]);
        }
        let mut emails: Vec<String> = a[1..].iter().chain(&b[101..]).map(email).collect();
        emails.sort();
        emails.dedup();
        assert_eq!(emails.len(), 300, "addresses are unique");
    }

    #[test]
    fn every_kind_of_break_is_drawn_and_breaks_a_row_only_when_asked() {
        let all = expected(&Options { rows: 3000, invalid: 1.0, ..Options::default() });
        assert_eq!(all.rejected_total, 3000);
        assert_eq!(all.rejected.len(), BREAKS.len(), "{:?}", all.rejected);
        assert!(all.warnings_by_code.is_empty());
        let none = expected(&Options { rows: 3000, invalid: 0.0, ..Options::default() });
        assert_eq!(none.rejected_total, 0);
        assert_eq!(none.warnings_by_code.keys().copied().collect::<Vec<_>>(), {
            let mut codes = WARNINGS.to_vec();
            codes.sort();
            codes.dedup();
            codes
        });
    }

    #[test]
    fn the_encodings_and_line_ends_change_only_the_bytes() {
        let opts = Options { rows: 300, invalid: 0.1, ..Options::default() };
        let (utf8, expected) = file(&opts);
        let (bom, _) = file(&Options { encoding: Encoding::Utf8Sig, ..opts.clone() });
        assert_eq!(&bom[..3], b"\xEF\xBB\xBF");
        assert_eq!(&bom[3..], &utf8[..]);
        let (cp1252, again) = file(&Options { encoding: Encoding::Cp1252, crlf: true, ..opts.clone() });
        assert_eq!(again, expected);
        let (text, _, malformed) = encoding_rs::WINDOWS_1252.decode(&cp1252);
        assert!(!malformed);
        assert_eq!(text.replace("\r\n", "\n").as_bytes(), &utf8[..]);
        assert!(std::str::from_utf8(&cp1252).is_err(), "accents are single cp1252 bytes");
        assert!(utf8.starts_with((HEADER.join(";") + "\n").as_bytes()));
    }

    #[test]
    fn every_line_reads_back_as_twenty_cells_some_quoted_for_a_semicolon_or_a_quote() {
        let (bytes, _) = file(&Options { rows: 2000, ..Options::default() });
        let mut reader = csv::ReaderBuilder::new().delimiter(b';').from_reader(&bytes[..]);
        let (mut semicolons, mut quotes, mut lines) = (0, 0, 0);
        for record in reader.records() {
            let record = record.unwrap();
            assert_eq!(record.len(), HEADER.len());
            semicolons += record.iter().filter(|cell| cell.contains(';')).count();
            quotes += record.iter().filter(|cell| cell.contains('"')).count();
            lines += 1;
        }
        assert_eq!(lines, 2000);
        assert!(semicolons > 10 && quotes > 10, "{semicolons} cells with a ;, {quotes} with a \"");
    }
}
