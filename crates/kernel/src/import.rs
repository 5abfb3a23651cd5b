//! Spreadsheet import (批量导入) for every domain: an uploaded table read as xlsx (its first
//! sheet) or CSV (UTF-8 with or without BOM, UTF-16 with BOM, or GB18030/GBK as Chinese Excel
//! saves it), the header row matched to a domain's column specs, the rows handed back with the
//! row numbers the user sees in Excel (the header is row 1). Errors are reported per row and
//! column ([`RowError`]) in one [`ImportReport`]; a refused import answers 422 with the report as
//! a problem document ([`ImportRejected`]). [`template_xlsx`] writes the template to download.
//!
//! Bounded: at most [`MAX_BYTES`] of file, [`MAX_ROWS`] data rows, [`MAX_COLUMNS`] columns, and
//! an xlsx whose parts declare more than [`MAX_UNZIPPED`] bytes is refused before anything is
//! inflated (the zip reader refuses a part that inflates beyond its declared size), so neither
//! a large file nor a zip bomb exhausts memory. The reader is CPU work: call it on a blocking
//! thread.

use crate::error::{ApiError, Code, Problem};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use utoipa::ToSchema;

/// Largest file accepted.
pub const MAX_BYTES: usize = 20 * 1024 * 1024;
/// Most data rows (not counting the header and blank rows) in one import.
pub const MAX_ROWS: usize = 50_000;
/// Cells right of this many columns are not read.
pub const MAX_COLUMNS: usize = 200;
/// Most bytes the parts of an xlsx may declare once inflated.
pub const MAX_UNZIPPED: u64 = 256 * 1024 * 1024;
/// Most row errors listed in a report (all are counted).
pub const MAX_LISTED_ERRORS: usize = 1000;
/// The media type of xlsx workbooks.
pub const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// One column a domain imports.
#[derive(Debug, Clone)]
pub struct ColumnSpec {
    /// The English key (`plate`), also accepted as a header.
    pub key: &'static str,
    /// The Chinese title (`车牌号`), the template's header.
    pub title: &'static str,
    /// Other headers accepted for this column.
    pub aliases: &'static [&'static str],
    pub required: bool,
    /// The template's example value.
    pub example: String,
    /// What the column takes (the template's note on the header).
    pub help: String,
    /// The values offered as a list in the template (other values may still be typed).
    pub choices: Vec<String>,
    /// Column width in the template (characters).
    pub width: f64,
}

impl ColumnSpec {
    pub fn new(key: &'static str, title: &'static str) -> Self {
        Self {
            key,
            title,
            aliases: &[],
            required: false,
            example: String::new(),
            help: String::new(),
            choices: Vec::new(),
            width: 16.0,
        }
    }
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }
    pub fn aliases(mut self, a: &'static [&'static str]) -> Self {
        self.aliases = a;
        self
    }
    pub fn example(mut self, e: impl Into<String>) -> Self {
        self.example = e.into();
        self
    }
    pub fn help(mut self, h: impl Into<String>) -> Self {
        self.help = h.into();
        self
    }
    pub fn choices(mut self, c: Vec<String>) -> Self {
        self.choices = c;
        self
    }
    pub fn width(mut self, w: f64) -> Self {
        self.width = w;
        self
    }
    fn matches(&self, header: &str) -> bool {
        let h = normalise(header);
        !h.is_empty()
            && (h == normalise(self.key)
                || h == normalise(self.title)
                || self.aliases.iter().any(|a| h == normalise(a)))
    }
}

/// Headers compare without case, spaces and the `*` that marks required columns.
fn normalise(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '*' | '＊' | '\u{feff}'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// What is wrong with one cell (or one row, or the header).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RowError {
    /// The row as Excel numbers it: the header is row 1.
    pub row: u32,
    /// The column's header as it is in the file (its template title when the column is missing).
    pub column: String,
    pub reason: String,
}

/// What to do when some rows are bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImportMode {
    /// Any bad row: nothing is imported (422 with the report).
    #[default]
    AllOrNothing,
    /// The valid rows are imported, the bad ones skipped and reported.
    ValidOnly,
}

/// The outcome of an import, or of its dry run.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ImportReport {
    pub mode: ImportMode,
    /// Checked only: nothing was written.
    pub dry_run: bool,
    /// Data rows in the file (blank rows not counted).
    pub total_rows: usize,
    /// Rows without an error.
    pub valid_rows: usize,
    /// Rows written.
    pub imported: usize,
    /// The rows with an error, in order: not imported.
    pub invalid_rows: Vec<u32>,
    /// How many errors there are in all.
    pub error_count: usize,
    /// The errors by row and column, the first [`MAX_LISTED_ERRORS`] of them.
    pub errors: Vec<RowError>,
    /// Whether `errors` lists only the first of `error_count`.
    pub errors_truncated: bool,
}

impl ImportReport {
    /// Sorts the errors by row and counts the rows they touch.
    pub fn new(mode: ImportMode, dry_run: bool, total_rows: usize, mut errors: Vec<RowError>, imported: usize) -> Self {
        errors.sort_by_key(|e| e.row);
        let invalid: BTreeSet<u32> = errors.iter().map(|e| e.row).collect();
        let error_count = errors.len();
        errors.truncate(MAX_LISTED_ERRORS);
        ImportReport {
            mode,
            dry_run,
            total_rows,
            valid_rows: total_rows.saturating_sub(invalid.len()),
            imported,
            invalid_rows: invalid.into_iter().collect(),
            error_count,
            errors,
            errors_truncated: error_count > MAX_LISTED_ERRORS,
        }
    }
}

/// A refused import: 422, a problem document (RFC 9457) whose extension members are the report.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportRejected {
    #[serde(flatten)]
    pub problem: Problem,
    #[serde(flatten)]
    pub report: ImportReport,
}

impl ImportRejected {
    pub fn new(detail: impl Into<String>, report: ImportReport) -> Self {
        Self { problem: ApiError::new(Code::InvalidField, detail).problem(), report }
    }
}

impl IntoResponse for ImportRejected {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut r = (StatusCode::UNPROCESSABLE_ENTITY, body).into_response();
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        r
    }
}

/// A data row: its Excel row number and its cells by column key (trimmed; absent when empty).
#[derive(Debug, Clone)]
pub struct Row {
    pub number: u32,
    pub cells: HashMap<&'static str, String>,
}

impl Row {
    /// The cell's text, `""` when empty or the column is absent.
    pub fn get(&self, key: &str) -> &str {
        self.cells.get(key).map_or("", String::as_str)
    }
}

/// A table read against column specs.
#[derive(Debug, Clone)]
pub struct Table {
    /// Each spec's header as it is in the file.
    titles: HashMap<&'static str, String>,
    /// The spec titles, for columns the file does not have.
    spec_titles: HashMap<&'static str, &'static str>,
    pub rows: Vec<Row>,
}

impl Table {
    /// The column's header as the file has it, else its template title.
    pub fn title(&self, key: &str) -> String {
        self.titles
            .get(key)
            .cloned()
            .or_else(|| self.spec_titles.get(key).map(|t| t.to_string()))
            .unwrap_or_else(|| key.to_string())
    }
    /// Whether the file has this column.
    pub fn has(&self, key: &str) -> bool {
        self.titles.contains_key(key)
    }
    /// An error in `row` at the column `key`.
    pub fn error(&self, row: u32, key: &str, reason: impl Into<String>) -> RowError {
        RowError { row, column: self.title(key), reason: reason.into() }
    }
}

/// Why a file could not be read as a table.
#[derive(Debug)]
pub enum ReadError {
    /// Not readable at all (not a spreadsheet, too large, empty): a problem to answer with.
    Refused(ApiError),
    /// The header does not match the specs (unknown, repeated or missing columns).
    Header(Vec<RowError>),
}

impl ReadError {
    /// The answer to a file that could not be read. Every 422 of an import carries the report
    /// (empty here: no row was checked), as the operations document it; a file that is not a
    /// spreadsheet at all, or too large, is a plain problem (400, 413, 415).
    pub fn into_response(self, mode: ImportMode, dry_run: bool) -> Response {
        match self {
            ReadError::Refused(e) if e.code.status() == StatusCode::UNPROCESSABLE_ENTITY => {
                ImportRejected { problem: e.problem(), report: ImportReport::new(mode, dry_run, 0, Vec::new(), 0) }
                    .into_response()
            }
            ReadError::Refused(e) => e.into_response(),
            ReadError::Header(errors) => ImportRejected::new(
                "the header row does not match the template: nothing was imported",
                ImportReport::new(mode, dry_run, 0, errors, 0),
            )
            .into_response(),
        }
    }
}

impl From<ApiError> for ReadError {
    fn from(e: ApiError) -> Self {
        ReadError::Refused(e)
    }
}

/// Limits of one read (tests lower them).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_bytes: usize,
    pub max_rows: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_bytes: MAX_BYTES, max_rows: MAX_ROWS }
    }
}

/// Refuses bodies whose declared media type is not a spreadsheet (the content is sniffed; this
/// only keeps JSON and the like away). Browsers send CSV as `text/csv`, `text/plain` or, on
/// Windows with Excel, `application/vnd.ms-excel`.
pub fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(ct) = headers.get(header::CONTENT_TYPE) else { return Ok(()) };
    let ct = ct.to_str().unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match ct.as_str() {
        XLSX
        | "text/csv"
        | "application/csv"
        | "text/plain"
        | "application/vnd.ms-excel"
        | "application/octet-stream" => Ok(()),
        _ => Err(ApiError::new(
            Code::UnsupportedMediaType,
            format!("send the file itself as {XLSX} or text/csv, not {ct:?}"),
        )),
    }
}

/// Reads `bytes` (xlsx or CSV, sniffed) against `specs` with the default limits.
pub fn read_table(bytes: &[u8], specs: &[ColumnSpec]) -> Result<Table, ReadError> {
    read_table_with(bytes, specs, Limits::default())
}

pub fn read_table_with(bytes: &[u8], specs: &[ColumnSpec], limits: Limits) -> Result<Table, ReadError> {
    if bytes.len() > limits.max_bytes {
        return Err(too_large(format!("the file is larger than {} MiB: split it", limits.max_bytes / (1024 * 1024))));
    }
    let grid = if bytes.starts_with(b"PK\x03\x04") {
        read_xlsx(bytes, limits.max_rows)?
    } else if bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]) {
        return Err(ApiError::new(
            Code::UnsupportedMediaType,
            "Excel 97-2003 workbooks (.xls) are not read: save the sheet as .xlsx or CSV",
        )
        .into());
    } else {
        read_csv(&decode_text(bytes)?, limits.max_rows)?
    };
    match_header(grid, specs)
}

fn too_large(m: String) -> ReadError {
    ReadError::Refused(ApiError::new(Code::PayloadTooLarge, m))
}

fn unreadable(m: impl Into<String>) -> ReadError {
    ReadError::Refused(ApiError::bad_request(m))
}

/// Rows as read: Excel row number and cell texts by column index (0-based). Blank rows are
/// left out; the first row of the grid is the header.
type Grid = Vec<(u32, Vec<String>)>;

fn too_many_rows(max: usize) -> ReadError {
    too_large(format!("the file has more than {max} rows: split it"))
}

fn push_row(grid: &mut Grid, number: u32, cells: Vec<String>, max_rows: usize) -> Result<(), ReadError> {
    if cells.iter().all(|c| c.is_empty()) {
        return Ok(());
    }
    // The header plus max_rows data rows.
    if grid.len() > max_rows {
        return Err(too_many_rows(max_rows));
    }
    grid.push((number, cells));
    Ok(())
}

fn read_xlsx(bytes: &[u8], max_rows: usize) -> Result<Grid, ReadError> {
    use calamine::{DataRef, Reader, Xlsx};
    let not_xlsx = |e: &dyn std::fmt::Display| {
        tracing::debug!(error = %e, "unreadable xlsx upload");
        unreadable("the file is not a readable xlsx workbook (save it again from Excel, or as CSV)")
    };
    {
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| not_xlsx(&e))?;
        let mut declared = 0u64;
        for i in 0..zip.len() {
            declared = declared.saturating_add(zip.by_index_raw(i).map_err(|e| not_xlsx(&e))?.size());
        }
        if declared > MAX_UNZIPPED {
            return Err(too_large(format!(
                "the workbook unpacks to more than {} MiB: split it",
                MAX_UNZIPPED / (1024 * 1024)
            )));
        }
    }
    let mut wb: Xlsx<_> = calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).map_err(|e| not_xlsx(&e))?;
    let Some(first) = wb.sheet_names().into_iter().next() else {
        return Err(unreadable("the workbook has no sheet"));
    };
    let mut cells = wb.worksheet_cells_reader(&first).map_err(|e| not_xlsx(&e))?;
    let mut grid: Grid = Vec::new();
    let mut current: Option<(u32, Vec<String>)> = None;
    while let Some(cell) = cells.next_cell().map_err(|e| not_xlsx(&e))? {
        let (r, c) = cell.get_position();
        let (r, c) = (r.saturating_add(1), c as usize);
        if current.as_ref().is_some_and(|(n, _)| *n != r) {
            if let Some((n, row)) = current.take() {
                push_row(&mut grid, n, row, max_rows)?;
            }
        }
        if c >= MAX_COLUMNS {
            continue;
        }
        let text = match cell.get_value() {
            DataRef::Empty => continue,
            DataRef::String(s) => s.trim().to_string(),
            DataRef::SharedString(s) => s.trim().to_string(),
            DataRef::Int(i) => i.to_string(),
            DataRef::Float(f) => number_text(*f),
            DataRef::Bool(b) => if *b { "TRUE" } else { "FALSE" }.to_string(),
            DataRef::DateTime(d) => excel_date_text(d),
            DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => s.clone(),
            DataRef::Error(e) => e.to_string(),
        };
        let row = &mut current.get_or_insert_with(|| (r, Vec::new())).1;
        if row.len() <= c {
            row.resize(c + 1, String::new());
        }
        row[c] = text;
    }
    if let Some((n, row)) = current.take() {
        push_row(&mut grid, n, row, max_rows)?;
    }
    Ok(grid)
}

/// A date cell as ISO text: `2026-12-31`, or `2026-12-31 08:30:00` with a time of day
/// (Excel keeps dates as day serials, so `46387` is what the cell would read otherwise);
/// durations as their number of days.
fn excel_date_text(d: &calamine::ExcelDateTime) -> String {
    if !d.is_datetime() {
        return number_text(d.as_f64());
    }
    let (y, mo, day, h, mi, sec, _) = d.to_ymd_hms_milli();
    if (h, mi, sec) == (0, 0, 0) {
        format!("{y:04}-{mo:02}-{day:02}")
    } else {
        format!("{y:04}-{mo:02}-{day:02} {h:02}:{mi:02}:{sec:02}")
    }
}

/// A number cell as the user typed it: `2`, not `2.0` (codes, phone numbers).
fn number_text(f: f64) -> String {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e15 { format!("{}", f as i64) } else { f.to_string() }
}

/// CSV text: UTF-8 (a BOM is dropped), UTF-16 with its BOM (Excel's "Unicode text"), else
/// GB18030, the superset of the GBK in which Chinese Excel saves CSV.
fn decode_text(bytes: &[u8]) -> Result<String, ReadError> {
    if bytes.is_empty() {
        return Err(ApiError::field(Code::InvalidField, "file", "the file is empty").into());
    }
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        return std::str::from_utf8(rest)
            .map(str::to_string)
            .map_err(|_| unreadable("the file starts as UTF-8 text but is not UTF-8"));
    }
    for (bom, enc) in [(&b"\xFF\xFE"[..], encoding_rs::UTF_16LE), (&b"\xFE\xFF"[..], encoding_rs::UTF_16BE)] {
        if let Some(rest) = bytes.strip_prefix(bom) {
            return enc
                .decode_without_bom_handling_and_without_replacement(rest)
                .map(|s| s.into_owned())
                .ok_or_else(|| unreadable("the file starts as UTF-16 text but is not UTF-16"));
        }
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => encoding_rs::GB18030
            .decode_without_bom_handling_and_without_replacement(bytes)
            .map(|s| s.into_owned())
            .ok_or_else(|| unreadable("the file is neither an xlsx workbook nor CSV text (UTF-8 or GBK)"))?,
    };
    if text.contains('\0') {
        return Err(unreadable("the file is neither an xlsx workbook nor CSV text"));
    }
    Ok(text)
}

/// RFC 4180 records: fields split by the delimiter the header line uses most (comma, tab or
/// semicolon), `"` quoting with `""` inside, CRLF or LF line ends, line breaks inside quotes. A
/// record is one Excel row, so rows are numbered by record.
fn read_csv(text: &str, max_rows: usize) -> Result<Grid, ReadError> {
    let delim = sniff_delimiter(text);
    let mut grid: Grid = Vec::new();
    let mut row: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut number: u32 = 1;
    let mut quoted = false;
    let mut quote_opened_at = 1;
    let mut chars = text.chars().peekable();
    while let Some(ch) = chars.next() {
        if quoted {
            match ch {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                _ => field.push(ch),
            }
            continue;
        }
        match ch {
            '"' if field.trim().is_empty() => {
                field.clear();
                quoted = true;
                quote_opened_at = number;
            }
            c if c == delim => end_field(&mut row, &mut field),
            '\r' | '\n' => {
                if ch == '\r' && chars.peek() == Some(&'\n') {
                    chars.next();
                }
                end_field(&mut row, &mut field);
                push_row(&mut grid, number, std::mem::take(&mut row), max_rows)?;
                number = number.saturating_add(1);
            }
            _ => field.push(ch),
        }
    }
    if quoted {
        return Err(unreadable(format!("row {quote_opened_at}: a quoted field is not closed")));
    }
    if !field.is_empty() || !row.is_empty() {
        end_field(&mut row, &mut field);
        push_row(&mut grid, number, row, max_rows)?;
    }
    Ok(grid)
}

fn end_field(row: &mut Vec<String>, field: &mut String) {
    if row.len() < MAX_COLUMNS {
        row.push(field.trim().to_string());
    }
    field.clear();
}

fn sniff_delimiter(text: &str) -> char {
    let first = text.lines().next().unwrap_or("");
    let count = |d: char| first.chars().filter(|c| *c == d).count();
    [',', '\t', ';'].into_iter().max_by_key(|d| (count(*d), *d == ',')).unwrap_or(',')
}

/// Matches the first non-blank row to the specs: every column known, none twice, every
/// required one present.
fn match_header(grid: Grid, specs: &[ColumnSpec]) -> Result<Table, ReadError> {
    let mut rows = grid.into_iter();
    let Some((header_row, header)) = rows.next() else {
        return Err(ApiError::field(Code::InvalidField, "file", "the file has no rows").into());
    };
    let mut errors = Vec::new();
    let mut by_col: Vec<Option<&'static str>> = vec![None; header.len()];
    let mut titles: HashMap<&'static str, String> = HashMap::new();
    let names = specs.iter().map(|s| s.title).collect::<Vec<_>>().join(", ");
    for (i, h) in header.iter().enumerate() {
        if h.is_empty() {
            continue;
        }
        match specs.iter().find(|s| s.matches(h)) {
            None => errors.push(RowError {
                row: header_row,
                column: h.clone(),
                reason: format!("unknown column; the columns are {names}"),
            }),
            Some(s) if titles.contains_key(s.key) => errors.push(RowError {
                row: header_row,
                column: h.clone(),
                reason: format!("a second column for {} ({})", s.title, s.key),
            }),
            Some(s) => {
                titles.insert(s.key, h.clone());
                by_col[i] = Some(s.key);
            }
        }
    }
    for s in specs.iter().filter(|s| s.required && !titles.contains_key(s.key)) {
        errors.push(RowError {
            row: header_row,
            column: s.title.to_string(),
            reason: format!("required column missing ({} or {})", s.title, s.key),
        });
    }
    if !errors.is_empty() {
        return Err(ReadError::Header(errors));
    }
    let rows: Vec<Row> = rows
        .map(|(number, cells)| Row {
            number,
            cells: cells
                .into_iter()
                .enumerate()
                .filter(|(_, c)| !c.is_empty())
                .filter_map(|(i, c)| Some((by_col.get(i).copied().flatten()?, c)))
                .collect(),
        })
        .filter(|r| !r.cells.is_empty())
        .collect();
    if rows.is_empty() {
        return Err(ApiError::field(Code::InvalidField, "file", "the file has no rows under the header").into());
    }
    Ok(Table { titles, spec_titles: specs.iter().map(|s| (s.key, s.title)).collect(), rows })
}

/// The template to fill in: the titles as the header (bold, frozen, with a note saying what each
/// column takes), a row of example values (a valid row: the template imports as it is), the
/// columns formatted as text so that Excel keeps codes and numbers as typed, and the offered
/// values as a list (a warning, not a refusal, for other values).
pub fn template_xlsx(sheet: &str, specs: &[ColumnSpec]) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    use rust_xlsxwriter::{DataValidation, DataValidationErrorStyle, Format, Note, Workbook};
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    ws.set_name(sheet)?;
    let text = Format::new().set_num_format("@");
    let head = Format::new().set_bold().set_num_format("@");
    let required = head.clone().set_font_color(rust_xlsxwriter::Color::Red);
    let last_row = MAX_ROWS as u32;
    for (i, s) in specs.iter().enumerate() {
        let col = i as u16;
        ws.set_column_width(col, s.width)?;
        ws.set_column_format(col, &text)?;
        ws.write_string_with_format(0, col, s.title, if s.required { &required } else { &head })?;
        ws.write_string_with_format(1, col, &s.example, &text)?;
        let mut note = format!("{} ({})", s.title, s.key);
        note.push_str(if s.required { " — 必填 required" } else { " — 选填 optional" });
        if !s.help.is_empty() {
            note.push('\n');
            note.push_str(&s.help);
        }
        ws.insert_note(0, col, &Note::new(note).set_author("wuqing").set_width(320).set_height(140))?;
        if !s.choices.is_empty() && s.choices.iter().map(|c| c.chars().count() + 1).sum::<usize>() < 250 {
            let v = DataValidation::new()
                .allow_list_strings(&s.choices)?
                .set_error_style(DataValidationErrorStyle::Warning)
                .set_error_message("not one of the listed values; codes are accepted too")?;
            ws.add_data_validation(1, col, last_row, col, &v)?;
        }
    }
    ws.set_freeze_panes(1, 0)?;
    wb.save_to_buffer()
}

/// An xlsx download.
pub fn xlsx_attachment(bytes: Vec<u8>, filename: &str) -> Response {
    let mut r = bytes.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(XLSX));
    if let Ok(h) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, h);
    }
    r
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn specs() -> Vec<ColumnSpec> {
        vec![
            ColumnSpec::new("plate", "车牌号").required().example("津A12345"),
            ColumnSpec::new("class", "车辆类型")
                .required()
                .example("出租车")
                .choices(vec!["出租车".into(), "校车".into()]),
            ColumnSpec::new("vin", "车辆识别代号").aliases(&["车架号"]).example("LGAX2A136D1002345"),
        ]
    }

    fn table(bytes: &[u8]) -> Table {
        match read_table(bytes, &specs()) {
            Ok(t) => t,
            Err(ReadError::Refused(e)) => panic!("refused: {e}"),
            Err(ReadError::Header(h)) => panic!("header: {h:?}"),
        }
    }

    fn refused(bytes: &[u8]) -> ApiError {
        match read_table(bytes, &specs()) {
            Err(ReadError::Refused(e)) => e,
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn csv_with_bom_quotes_and_blank_lines_keeps_excel_row_numbers() {
        let t = table(
            "\u{feff}车牌号, Class ,VIN\r\n津A12345,出租车,\r\n\r\n\"津B 1\"\"2\",\"校\n车\",x\n,,\n津C11111,校车"
                .as_bytes(),
        );
        let got: Vec<(u32, &str, &str, &str)> =
            t.rows.iter().map(|r| (r.number, r.get("plate"), r.get("class"), r.get("vin"))).collect();
        assert_eq!(
            got,
            vec![(2, "津A12345", "出租车", ""), (4, "津B 1\"2", "校\n车", "x"), (6, "津C11111", "校车", "")]
        );
        assert_eq!(t.title("class"), "Class");
        assert_eq!(t.title("vin"), "VIN");
    }

    #[test]
    fn gbk_and_tab_separated_text() {
        let (gbk, _, bad) = encoding_rs::GBK.encode("车架号\t车牌号\t车辆类型\nLGAX2A136D1002345\t津A12345\t出租车\n");
        assert!(!bad);
        let t = table(&gbk);
        assert_eq!((t.rows[0].get("vin"), t.rows[0].get("plate")), ("LGAX2A136D1002345", "津A12345"));
        assert_eq!(t.title("vin"), "车架号");
    }

    #[test]
    fn header_errors_name_unknown_repeated_and_missing_columns() {
        let Err(ReadError::Header(e)) = read_table("车牌号,plate,颜色\n津A12345,津A12345,黄色\n".as_bytes(), &specs())
        else {
            panic!("header accepted")
        };
        let cols: Vec<(u32, &str)> = e.iter().map(|e| (e.row, e.column.as_str())).collect();
        assert_eq!(cols, vec![(1, "plate"), (1, "颜色"), (1, "车辆类型")]);
    }

    #[test]
    fn refuses_garbage_empty_xls_and_too_much() {
        assert_eq!(refused(b"").code, Code::InvalidField);
        assert_eq!(refused(b"\x00\x01\x02\xff\xfe\x80").code, Code::BadRequest);
        assert_eq!(refused(b"PK\x03\x04not really a zip").code, Code::BadRequest);
        assert_eq!(refused(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1, 0, 0]).code, Code::UnsupportedMediaType);
        assert_eq!(refused("车牌号,车辆类型\n".as_bytes()).code, Code::InvalidField, "no data rows");
        assert_eq!(refused("车牌号,车辆类型\n\"津A1,x\n".as_bytes()).code, Code::BadRequest, "open quote");
        let many = format!("车牌号,车辆类型\n{}", "津A12345,校车\n".repeat(11));
        let limits = Limits { max_bytes: MAX_BYTES, max_rows: 10 };
        let Err(ReadError::Refused(e)) = read_table_with(many.as_bytes(), &specs(), limits) else { panic!() };
        assert_eq!(e.code, Code::PayloadTooLarge);
        let limits = Limits { max_bytes: 10, max_rows: 10 };
        let Err(ReadError::Refused(e)) = read_table_with(many.as_bytes(), &specs(), limits) else { panic!() };
        assert_eq!(e.code, Code::PayloadTooLarge);
    }

    #[test]
    fn the_template_reads_back_as_its_example_row() {
        let bytes = template_xlsx("车辆", &specs()).unwrap();
        let t = table(&bytes);
        assert_eq!(t.rows.len(), 1);
        assert_eq!(t.rows[0].number, 2);
        assert_eq!(t.rows[0].get("class"), "出租车");
        assert_eq!(t.rows[0].get("vin"), "LGAX2A136D1002345");
    }

    #[test]
    fn xlsx_numbers_read_as_typed_and_rows_as_numbered() {
        let mut wb = rust_xlsxwriter::Workbook::new();
        let ws = wb.add_worksheet();
        ws.write_string(0, 0, "车牌号").unwrap();
        ws.write_string(0, 1, "车辆类型").unwrap();
        ws.write_number(2, 0, 2.0).unwrap();
        ws.write_number(2, 1, 2.5).unwrap();
        ws.write_string(4, 250, "far right").unwrap();
        let t = table(&wb.save_to_buffer().unwrap());
        assert_eq!(t.rows.len(), 1);
        assert_eq!((t.rows[0].number, t.rows[0].get("plate"), t.rows[0].get("class")), (3, "2", "2.5"));
    }

    #[test]
    fn xlsx_date_cells_read_as_iso_dates() {
        let mut wb = rust_xlsxwriter::Workbook::new();
        let ws = wb.add_worksheet();
        ws.write_string(0, 0, "车牌号").unwrap();
        ws.write_string(0, 1, "车辆类型").unwrap();
        let date = rust_xlsxwriter::Format::new().set_num_format("yyyy-mm-dd");
        let when = rust_xlsxwriter::ExcelDateTime::from_ymd(2026, 12, 31).unwrap();
        ws.write_datetime_with_format(1, 0, &when, &date).unwrap();
        let stamp = rust_xlsxwriter::ExcelDateTime::parse_from_str("2026-03-01 08:30:00").unwrap();
        let long = rust_xlsxwriter::Format::new().set_num_format("yyyy-mm-dd hh:mm:ss");
        ws.write_datetime_with_format(1, 1, &stamp, &long).unwrap();
        let t = table(&wb.save_to_buffer().unwrap());
        assert_eq!((t.rows[0].get("plate"), t.rows[0].get("class")), ("2026-12-31", "2026-03-01 08:30:00"));
    }

    #[test]
    fn report_counts_rows_not_errors() {
        let e = |row| RowError { row, column: "c".into(), reason: "r".into() };
        let r = ImportReport::new(ImportMode::ValidOnly, false, 10, vec![e(5), e(3), e(5)], 8);
        assert_eq!((r.valid_rows, r.invalid_rows.clone(), r.error_count), (8, vec![3, 5], 3));
        assert_eq!(r.errors[0].row, 3);
    }
}
