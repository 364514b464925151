//! Rule codes and the sentences that explain them, in French and in English.

use crate::domain::ReportLanguage;

/// Every message an import can produce. Row rules reject or correct one line;
/// file rules refuse (or comment on) the whole file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    EmailFormat,
    EmailDuplicateInFile,
    EmailExists,
    EmailUnknown,
    LanguageUnknown,
    CivilityUnknown,
    NameDigits,
    BirthdateFormat,
    BirthdateFuture,
    TownFormat,
    AddressPartial,
    CountryUnknown,
    PhoneFormat,
    CriteriaUnknown,
    ConsentValue,
    RowColumns,
    DisplayEmpty,
    NameEmpty,
    CivilityEmpty,
    LanguageEmpty,
    MappingTooManyColumns,
    HeaderMissingColumns,
    FileEmpty,
    FileNotText,
    FileEncoding,
    FileDelimiter,
    FileRagged,
    FileTooLarge,
    FileLineTooLong,
    FileTooManyRows,
    HeaderTooManyColumns,
    FieldTooLong,
    /// A cell holding a NUL character, which no stored text may hold.
    CellNul,
    CellFormula,
    ArchiveInvalid,
    ArchiveEntries,
    ArchiveUnsafePath,
    ArchiveEncrypted,
    ArchiveTooLarge,
    WorkbookInvalid,
    HeaderDrift,
    HeaderNoEmail,
    HeaderDuplicateTarget,
    RatioExceeded,
    GuardRowDrop,
    GuardUnsubscribe,
    UpdateConflict,
    HeaderOldNew,
    /// `email.unknown` in a mass update, which has no mode to name.
    EmailUnknownMassUpdate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

impl Rule {
    pub fn code(self) -> &'static str {
        match self {
            Rule::EmailFormat => "email.format",
            Rule::EmailDuplicateInFile => "email.duplicate_in_file",
            Rule::EmailExists => "email.exists",
            Rule::EmailUnknown => "email.unknown",
            Rule::LanguageUnknown => "language.unknown",
            Rule::CivilityUnknown => "civility.unknown",
            Rule::NameDigits => "name.digits",
            Rule::BirthdateFormat => "birthdate.format",
            Rule::BirthdateFuture => "birthdate.future",
            Rule::TownFormat => "town.format",
            Rule::AddressPartial => "address.partial",
            Rule::CountryUnknown => "country.unknown",
            Rule::PhoneFormat => "phone.format",
            Rule::CriteriaUnknown => "criteria.unknown",
            Rule::ConsentValue => "consent.value",
            Rule::RowColumns => "row.columns",
            Rule::DisplayEmpty => "display.empty",
            Rule::NameEmpty => "name.empty",
            Rule::CivilityEmpty => "civility.empty",
            Rule::LanguageEmpty => "language.empty",
            Rule::MappingTooManyColumns => "mapping.too_many_columns",
            Rule::HeaderMissingColumns => "header.missing_columns",
            Rule::FileEmpty => "file.empty",
            Rule::FileNotText => "file.not_text",
            Rule::FileEncoding => "file.encoding",
            Rule::FileDelimiter => "file.delimiter",
            Rule::FileRagged => "file.ragged",
            Rule::FileTooLarge => "file.too_large",
            Rule::FileLineTooLong => "file.line_too_long",
            Rule::FileTooManyRows => "file.too_many_rows",
            Rule::HeaderTooManyColumns => "header.too_many_columns",
            Rule::FieldTooLong => "field.too_long",
            Rule::CellNul => "cell.nul",
            Rule::CellFormula => "cell.formula",
            Rule::ArchiveInvalid => "archive.invalid",
            Rule::ArchiveEntries => "archive.entries",
            Rule::ArchiveUnsafePath => "archive.unsafe_path",
            Rule::ArchiveEncrypted => "archive.encrypted",
            Rule::ArchiveTooLarge => "archive.too_large",
            Rule::WorkbookInvalid => "file.workbook",
            Rule::HeaderDrift => "header.drift",
            Rule::HeaderNoEmail => "header.no_email",
            Rule::HeaderDuplicateTarget => "header.duplicate_target",
            Rule::RatioExceeded => "file.invalid_ratio",
            Rule::GuardRowDrop => "guard.row_drop",
            Rule::GuardUnsubscribe => "guard.unsubscribe",
            Rule::UpdateConflict => "update.conflict",
            Rule::HeaderOldNew => "header.old_new",
            Rule::EmailUnknownMassUpdate => "email.unknown",
        }
    }

    pub fn severity(self) -> Severity {
        match self {
            Rule::DisplayEmpty
            | Rule::NameEmpty
            | Rule::CivilityEmpty
            | Rule::LanguageEmpty
            | Rule::MappingTooManyColumns
            | Rule::HeaderMissingColumns => Severity::Warning,
            _ => Severity::Error,
        }
    }

    /// The human sentence for this rule. `value` is the offending cell (or
    /// a detail for file rules), `column` the header of its column.
    pub fn sentence(self, lang: ReportLanguage, column: &str, value: &str) -> String {
        use ReportLanguage::{En, Fr};
        match (self, lang) {
            (Rule::EmailFormat, Fr) if value.trim().is_empty() => "Adresse courriel manquante : la ligne n'est pas importée.".into(),
            (Rule::EmailFormat, En) if value.trim().is_empty() => "Missing e-mail address: the line is not imported.".into(),
            (Rule::EmailFormat, Fr) => format!("Adresse courriel mal formée : « {value} » (attendu x@y.tld, sans espace)."),
            (Rule::EmailFormat, En) => format!("Malformed e-mail address: \"{value}\" (expected x@y.tld, no spaces)."),
            (Rule::EmailDuplicateInFile, Fr) => format!("L'adresse {value} figure plusieurs fois dans le fichier : la ligne {column} est conservée, celle-ci est ignorée."),
            (Rule::EmailDuplicateInFile, En) => format!("The address {value} appears more than once in the file: line {column} is kept, this one is skipped."),
            (Rule::EmailExists, Fr) => format!("[Conflit] L'adresse {value} est déjà présente dans la base de contacts : le contact n'est pas importé."),
            (Rule::EmailExists, En) => format!("[Conflict] The e-mail address {value} is already present in the contact base: the contact is not imported."),
            (Rule::EmailUnknown, Fr) => format!("L'adresse {value} n'existe pas dans la base de contacts : rien n'est mis à jour (mode mise à jour seule)."),
            (Rule::EmailUnknown, En) => format!("The address {value} is not in the contact base: nothing is updated (update-only mode)."),
            (Rule::LanguageUnknown, Fr) => format!("Langue inconnue : « {value} » (valeurs possibles : FR, EN)."),
            (Rule::LanguageUnknown, En) => format!("Unknown language: \"{value}\" (accepted values: FR, EN)."),
            (Rule::CivilityUnknown, Fr) => format!("Civilité inconnue : « {value} » (valeurs possibles : MR, MRS, MISS, MR_AND_MRS, UNDEFINED)."),
            (Rule::CivilityUnknown, En) => format!("Unknown title: \"{value}\" (accepted values: MR, MRS, MISS, MR_AND_MRS, UNDEFINED)."),
            (Rule::NameDigits, Fr) => format!("Le champ {column} contient des chiffres : « {value} »."),
            (Rule::NameDigits, En) => format!("{column} has an unexpected format (digits): \"{value}\"."),
            (Rule::BirthdateFormat, Fr) => format!("Date de naissance invalide : « {value} » (format attendu jj.mm.aaaa, date réelle)."),
            (Rule::BirthdateFormat, En) => format!("Invalid birthdate: \"{value}\" (expected dd.mm.yyyy, a real date)."),
            (Rule::BirthdateFuture, Fr) => format!("Date de naissance dans le futur : « {value} »."),
            (Rule::BirthdateFuture, En) => format!("Birthdate in the future: \"{value}\"."),
            (Rule::TownFormat, Fr) => format!("Ville mal formée : « {value} » (ni chiffres ni caractères spéciaux)."),
            (Rule::TownFormat, En) => format!("Malformed town: \"{value}\" (no digits or special characters)."),
            (Rule::AddressPartial, Fr) => "Adresse partielle : le code postal (ou le canton/département) est obligatoire quand l'adresse, la ville ou le pays est renseigné.".into(),
            (Rule::AddressPartial, En) => "Partial address: a postal code (or state) is required when the address, town or country is given.".into(),
            (Rule::CountryUnknown, Fr) => format!("Pays inconnu : « {value} » (code ISO à 2 lettres ou nom complet en français ou en anglais, accents compris)."),
            (Rule::CountryUnknown, En) => format!("Unknown country: \"{value}\" (2-letter ISO code or full name in French or English, with accents)."),
            (Rule::PhoneFormat, Fr) => format!("Numéro de téléphone mal formé dans {column} : « {value} » (chiffres, espaces et + . - ( ) seulement)."),
            (Rule::PhoneFormat, En) => format!("Malformed phone number in {column}: \"{value}\" (digits, spaces and + . - ( ) only)."),
            (Rule::CriteriaUnknown, Fr) => format!("Valeur de critère inconnue pour {column} : « {value} » (utilisez un code interne déclaré dans le profil)."),
            (Rule::CriteriaUnknown, En) => format!("Unknown criterion value for {column}: \"{value}\" (use an internal code declared in the profile)."),
            (Rule::ConsentValue, Fr) => format!("Valeur d'autorisation invalide pour {column} : « {value} » (TRUE, true, T, t, FALSE, false, F, f ou vide)."),
            (Rule::ConsentValue, En) => format!("Invalid consent value for {column}: \"{value}\" (TRUE, true, T, t, FALSE, false, F, f or empty)."),
            (Rule::RowColumns, Fr) => format!("La ligne n'a pas le nombre de colonnes de l'en-tête ({value})."),
            (Rule::RowColumns, En) => format!("The line does not have as many columns as the header ({value})."),
            (Rule::DisplayEmpty, Fr) => "Affichage vide : il est recommandé de le renseigner pour personnaliser les infolettres.".into(),
            (Rule::DisplayEmpty, En) => "Empty display name: recommended to personalise newsletters.".into(),
            (Rule::NameEmpty, Fr) => format!("{column} vide : importé avec la valeur « - »."),
            (Rule::NameEmpty, En) => format!("Empty {column}: imported as \"-\"."),
            (Rule::CivilityEmpty, Fr) => "Civilité vide : importée avec la valeur UNDEFINED.".into(),
            (Rule::CivilityEmpty, En) => "Empty title: imported as UNDEFINED.".into(),
            (Rule::LanguageEmpty, Fr) => format!("Langue vide : importée avec la langue par défaut {value}."),
            (Rule::LanguageEmpty, En) => format!("Empty language: imported with the default language {value}."),
            (Rule::MappingTooManyColumns, Fr) => format!("Plus de 20 colonnes associées : colonnes ignorées : {value}."),
            (Rule::MappingTooManyColumns, En) => format!("More than 20 mapped columns: ignored columns: {value}."),
            (Rule::HeaderMissingColumns, Fr) => format!("Colonnes du profil absentes du fichier : {value}."),
            (Rule::HeaderMissingColumns, En) => format!("Profile columns missing from the file: {value}."),
            (Rule::FileEmpty, Fr) => "Le fichier est vide : aucune ligne d'en-tête.".into(),
            (Rule::FileEmpty, En) => "The file is empty: no header line.".into(),
            (Rule::FileNotText, Fr) => format!("Le fichier n'est pas un fichier texte ({value})."),
            (Rule::FileNotText, En) => format!("The file is not a text file ({value})."),
            (Rule::FileEncoding, Fr) => format!("Encodage invalide ({value})."),
            (Rule::FileEncoding, En) => format!("Invalid encoding ({value})."),
            (Rule::FileDelimiter, Fr) => format!("Mauvais séparateur : {value}."),
            (Rule::FileDelimiter, En) => format!("Wrong delimiter: {value}."),
            (Rule::FileRagged, Fr) => format!("La ligne a plus de colonnes que l'en-tête ({value}) : le fichier est refusé."),
            (Rule::FileRagged, En) => format!("The line has more columns than the header ({value}): the file is refused."),
            (Rule::FileTooLarge, Fr) => format!("Le fichier dépasse la taille maximale ({value}) : il est refusé."),
            (Rule::FileTooLarge, En) => format!("The file is larger than the limit ({value}): it is refused."),
            (Rule::FileLineTooLong, Fr) => format!("La ligne dépasse la longueur maximale ({value}) : le fichier est refusé."),
            (Rule::FileLineTooLong, En) => format!("The line is longer than the limit ({value}): the file is refused."),
            (Rule::FileTooManyRows, Fr) => format!("Le fichier dépasse le nombre maximal de lignes ({value}) : il est refusé."),
            (Rule::FileTooManyRows, En) => format!("The file has more lines than the limit ({value}): it is refused."),
            (Rule::HeaderTooManyColumns, Fr) => format!("L'en-tête dépasse le nombre maximal de colonnes ({value}) : le fichier est refusé."),
            (Rule::HeaderTooManyColumns, En) => format!("The header has more columns than the limit ({value}): the file is refused."),
            (Rule::FieldTooLong, Fr) => format!("La valeur de la colonne {column} dépasse la longueur maximale ({value})."),
            (Rule::FieldTooLong, En) => format!("The value of column {column} is longer than the limit ({value})."),
            (Rule::CellNul, Fr) => format!("La valeur de la colonne {column} contient un caractère NUL (U+0000), qu'aucun texte ne peut contenir : la ligne n'est pas importée."),
            (Rule::CellNul, En) => format!("The value of column {column} holds a NUL character (U+0000), which no text may hold: the line is not imported."),
            (Rule::CellFormula, Fr) => format!("La valeur de la colonne {column} commence comme une formule de tableur ({value}) : la ligne n'est pas importée."),
            (Rule::CellFormula, En) => format!("The value of column {column} starts like a spreadsheet formula ({value}): the line is not imported."),
            (Rule::ArchiveInvalid, Fr) => format!("L'archive zip est illisible ({value})."),
            (Rule::ArchiveInvalid, En) => format!("The zip archive cannot be read ({value})."),
            (Rule::ArchiveEntries, Fr) => format!("L'archive doit contenir un seul fichier .csv, .txt, .xlsx ou .xls ({value})."),
            (Rule::ArchiveEntries, En) => format!("The archive must hold a single .csv, .txt, .xlsx or .xls file ({value})."),
            (Rule::ArchiveUnsafePath, Fr) => format!("L'archive contient un chemin dangereux ({value}) : elle est refusée sans être décompressée."),
            (Rule::ArchiveUnsafePath, En) => format!("The archive holds an unsafe path ({value}): it is refused unpacked."),
            (Rule::ArchiveEncrypted, Fr) => format!("Le fichier {value} de l'archive est chiffré : envoyez une archive sans mot de passe."),
            (Rule::ArchiveEncrypted, En) => format!("The file {value} in the archive is encrypted: send an archive without a password."),
            (Rule::ArchiveTooLarge, Fr) => format!("Le fichier décompressé dépasse la taille maximale ({value}) : l'archive est refusée."),
            (Rule::ArchiveTooLarge, En) => format!("The unpacked file is larger than the limit ({value}): the archive is refused."),
            (Rule::WorkbookInvalid, Fr) => format!("Le classeur est illisible ({value}) : enregistrez-le à nouveau depuis le tableur, ou au format CSV."),
            (Rule::WorkbookInvalid, En) => format!("The workbook cannot be read ({value}): save it again from the spreadsheet, or as CSV."),
            (Rule::HeaderDrift, Fr) => format!("L'en-tête diffère de celui du profil : {value}."),
            (Rule::HeaderDrift, En) => format!("The header differs from the profile's: {value}."),
            (Rule::HeaderNoEmail, Fr) => "Aucune colonne n'est associée à l'adresse courriel.".into(),
            (Rule::HeaderNoEmail, En) => "No column is mapped to the e-mail address.".into(),
            (Rule::HeaderDuplicateTarget, Fr) => format!("Plusieurs colonnes sont associées au même champ : {value}."),
            (Rule::HeaderDuplicateTarget, En) => format!("Several columns map to the same field: {value}."),
            (Rule::RatioExceeded, Fr) => format!("Trop de lignes rejetées ({value}) : rien n'est importé."),
            (Rule::RatioExceeded, En) => format!("Too many rejected lines ({value}): nothing is imported."),
            (Rule::GuardRowDrop, Fr) => format!("Le fichier a beaucoup moins de lignes valides que le dernier import réussi ({value}) : rien n'est importé ; après vérification, libérez-le avec « dropfeed runs release »."),
            (Rule::GuardRowDrop, En) => format!("The file has far fewer valid lines than the last successful import ({value}): nothing is imported; once checked, release it with `dropfeed runs release`."),
            (Rule::GuardUnsubscribe, Fr) => format!("Le fichier retire trop d'autorisations ({value}) : rien n'est importé ; après vérification, libérez-le avec « dropfeed runs release »."),
            (Rule::GuardUnsubscribe, En) => format!("The file withdraws too many consents ({value}): nothing is imported; once checked, release it with `dropfeed runs release`."),
            // `value` is the [old] value; the stored one is `{stored}`, filled in by `mass_update` in SQL.
            (Rule::UpdateConflict, Fr) => format!("La valeur de {column} a changé depuis l'export : [old] « {value} », valeur actuelle « {{stored}} » ; aucune valeur de la ligne n'est mise à jour."),
            (Rule::UpdateConflict, En) => format!("The value of {column} changed since the export: [old] \"{value}\", stored now \"{{stored}}\"; no value of the line is updated."),
            (Rule::HeaderOldNew, Fr) => format!("En-tête de mise à jour en masse invalide : {value}."),
            (Rule::HeaderOldNew, En) => format!("Invalid mass-update header: {value}."),
            (Rule::EmailUnknownMassUpdate, Fr) => format!("L'adresse {value} n'existe pas dans la base de contacts : la mise à jour en masse ne crée pas de contact, la ligne est ignorée."),
            (Rule::EmailUnknownMassUpdate, En) => format!("The address {value} is not in the contact base: a mass update creates no contact, the line is skipped."),
        }
    }
}

/// Cuts a cell to a length fit for a message, on a character boundary.
pub fn excerpt(value: &str) -> &str {
    const MAX: usize = 200;
    if value.len() <= MAX {
        return value;
    }
    let mut end = MAX;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    &value[..end]
}

/// A file that cannot be imported at all: nothing is written.
#[derive(Debug, Clone)]
pub struct FileFailure {
    pub rule: Rule,
    /// 1-based line, when one line is to blame.
    pub line: Option<u64>,
    pub detail: String,
}

impl FileFailure {
    pub fn new(rule: Rule, line: Option<u64>, detail: impl Into<String>) -> FileFailure {
        FileFailure { rule, line, detail: detail.into() }
    }
}
