// Package parse extracts the plain text of an uploaded document for
// ingestion (issue 11): parse → chunk → embed → insert. It reads .txt and
// .md (and common source-code text), .html, .pdf, .docx and .json, and
// tells a file it cannot read (unsupported_file) from a broken one
// (invalid_file) with an *Error whose Code is OpenAI's vector-store-file
// last_error code.
//
// Every input is hostile: sizes are bounded (extracted text, a .docx's
// entries and decompressed XML), nothing panics, and PDFs — the format
// with the most parser bugs — are read by PDFium compiled to WebAssembly
// and run by wazero: its memory is capped, it sees no file system, and a
// document that runs past the deadline is stopped, not abandoned on a
// spinning goroutine. The package is a leaf: the standard library and its
// format libraries, nothing of ours.
package parse
