//! Structure and cardinality of FHIR R4 resources in JSON, checked before anything is stored:
//! every element known to R4 (or an extension), of its type, as often as allowed, required ones
//! present, codes of required bindings from their value set. Each problem names its path
//! (`Patient.name[0].given[1]`) for the OperationOutcome.
//!
//! Definitions are written from the R4 specification (hl7.org/fhir/R4, resource and datatype
//! pages), one table per type; [`definition`] lists the resources the platform supports so far
//! (Patient, Organization, Observation, Condition, Encounter, AllergyIntolerance, Immunization,
//! MedicationRequest, MedicationStatement, Practitioner, PractitionerRole, DiagnosticReport,
//! DocumentReference, Consent, Provenance, ImagingStudy).

use super::datetime::{self, BEIJING, Kind};
use serde_json::{Map, Value};

/// A primitive or complex type an element may have.
#[derive(Debug, Clone, Copy)]
pub enum Ty {
    Boolean,
    Integer,
    PositiveInt,
    UnsignedInt,
    Decimal,
    String,
    Markdown,
    Code,
    Id,
    Uri,
    Url,
    Canonical,
    Base64Binary,
    Date,
    DateTime,
    Instant,
    /// A time of day, hh:mm:ss(.fff).
    Time,
    /// An XHTML fragment (Narrative.div): checked as a string here.
    Xhtml,
    Complex(&'static str, &'static [El]),
    /// The type of the element that holds this one: a backbone element that nests in itself
    /// (Consent.provision.provision).
    Same,
}

impl Ty {
    /// The name that follows a choice element's stem (`value` + `Quantity`).
    fn suffix(&self) -> &'static str {
        match self {
            Ty::Boolean => "Boolean",
            Ty::Integer => "Integer",
            Ty::PositiveInt => "PositiveInt",
            Ty::UnsignedInt => "UnsignedInt",
            Ty::Decimal => "Decimal",
            Ty::String => "String",
            Ty::Markdown => "Markdown",
            Ty::Code => "Code",
            Ty::Id => "Id",
            Ty::Uri => "Uri",
            Ty::Url => "Url",
            Ty::Canonical => "Canonical",
            Ty::Base64Binary => "Base64Binary",
            Ty::Date => "Date",
            Ty::DateTime => "DateTime",
            Ty::Instant => "Instant",
            Ty::Time => "Time",
            Ty::Xhtml => "Xhtml",
            Ty::Complex(name, _) => name,
            Ty::Same => "",
        }
    }
}

/// One element of a type: its name (`value[x]` for a choice), cardinality, types and, for a
/// required binding, the codes allowed.
#[derive(Debug, Clone, Copy)]
pub struct El {
    pub name: &'static str,
    pub min: u32,
    /// `None`: any number (`*`).
    pub max: Option<u32>,
    pub types: &'static [Ty],
    pub codes: Option<&'static [&'static str]>,
}

const fn el(name: &'static str, min: u32, max: Option<u32>, types: &'static [Ty]) -> El {
    El { name, min, max, types, codes: None }
}

const fn code(name: &'static str, min: u32, codes: &'static [&'static str]) -> El {
    El { name, min, max: Some(1), types: &[Ty::Code], codes: Some(codes) }
}

const ONE: Option<u32> = Some(1);
const ADMINISTRATIVE_GENDER: &[&str] = &["male", "female", "other", "unknown"];
const DAYS_OF_WEEK: &[&str] = &["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const MANY: Option<u32> = None;

// Datatypes (R4 datatypes.html). Every element may also carry `id` and `extension`.
pub const CODING: Ty = Ty::Complex(
    "Coding",
    &[
        el("system", 0, ONE, &[Ty::Uri]),
        el("version", 0, ONE, &[Ty::String]),
        el("code", 0, ONE, &[Ty::Code]),
        el("display", 0, ONE, &[Ty::String]),
        el("userSelected", 0, ONE, &[Ty::Boolean]),
    ],
);
pub const CODEABLE_CONCEPT: Ty =
    Ty::Complex("CodeableConcept", &[el("coding", 0, MANY, &[CODING]), el("text", 0, ONE, &[Ty::String])]);
pub const PERIOD: Ty =
    Ty::Complex("Period", &[el("start", 0, ONE, &[Ty::DateTime]), el("end", 0, ONE, &[Ty::DateTime])]);
pub const REFERENCE: Ty = Ty::Complex(
    "Reference",
    &[
        el("reference", 0, ONE, &[Ty::String]),
        el("type", 0, ONE, &[Ty::Uri]),
        el("identifier", 0, ONE, &[IDENTIFIER_NO_ASSIGNER]),
        el("display", 0, ONE, &[Ty::String]),
    ],
);
/// Identifier inside Reference.identifier (its own assigner would recurse without end).
const IDENTIFIER_NO_ASSIGNER: Ty = Ty::Complex(
    "Identifier",
    &[
        code("use", 0, &["usual", "official", "temp", "secondary", "old"]),
        el("type", 0, ONE, &[CODEABLE_CONCEPT]),
        el("system", 0, ONE, &[Ty::Uri]),
        el("value", 0, ONE, &[Ty::String]),
        el("period", 0, ONE, &[PERIOD]),
    ],
);
pub const IDENTIFIER: Ty = Ty::Complex(
    "Identifier",
    &[
        code("use", 0, &["usual", "official", "temp", "secondary", "old"]),
        el("type", 0, ONE, &[CODEABLE_CONCEPT]),
        el("system", 0, ONE, &[Ty::Uri]),
        el("value", 0, ONE, &[Ty::String]),
        el("period", 0, ONE, &[PERIOD]),
        el("assigner", 0, ONE, &[REFERENCE]),
    ],
);
pub const HUMAN_NAME: Ty = Ty::Complex(
    "HumanName",
    &[
        code("use", 0, &["usual", "official", "temp", "nickname", "anonymous", "old", "maiden"]),
        el("text", 0, ONE, &[Ty::String]),
        el("family", 0, ONE, &[Ty::String]),
        el("given", 0, MANY, &[Ty::String]),
        el("prefix", 0, MANY, &[Ty::String]),
        el("suffix", 0, MANY, &[Ty::String]),
        el("period", 0, ONE, &[PERIOD]),
    ],
);
pub const CONTACT_POINT: Ty = Ty::Complex(
    "ContactPoint",
    &[
        code("system", 0, &["phone", "fax", "email", "pager", "url", "sms", "other"]),
        el("value", 0, ONE, &[Ty::String]),
        code("use", 0, &["home", "work", "temp", "old", "mobile"]),
        el("rank", 0, ONE, &[Ty::PositiveInt]),
        el("period", 0, ONE, &[PERIOD]),
    ],
);
pub const ADDRESS: Ty = Ty::Complex(
    "Address",
    &[
        code("use", 0, &["home", "work", "temp", "old", "billing"]),
        code("type", 0, &["postal", "physical", "both"]),
        el("text", 0, ONE, &[Ty::String]),
        el("line", 0, MANY, &[Ty::String]),
        el("city", 0, ONE, &[Ty::String]),
        el("district", 0, ONE, &[Ty::String]),
        el("state", 0, ONE, &[Ty::String]),
        el("postalCode", 0, ONE, &[Ty::String]),
        el("country", 0, ONE, &[Ty::String]),
        el("period", 0, ONE, &[PERIOD]),
    ],
);
const QUANTITY_ELEMENTS: &[El] = &[
    el("value", 0, ONE, &[Ty::Decimal]),
    code("comparator", 0, &["<", "<=", ">=", ">"]),
    el("unit", 0, ONE, &[Ty::String]),
    el("system", 0, ONE, &[Ty::Uri]),
    el("code", 0, ONE, &[Ty::Code]),
];
pub const QUANTITY: Ty = Ty::Complex("Quantity", QUANTITY_ELEMENTS);
/// Quantity profiles named as types of their own in choice elements (`onsetAge`).
pub const AGE: Ty = Ty::Complex("Age", QUANTITY_ELEMENTS);
pub const DURATION: Ty = Ty::Complex("Duration", QUANTITY_ELEMENTS);
pub const RANGE: Ty = Ty::Complex("Range", &[el("low", 0, ONE, &[QUANTITY]), el("high", 0, ONE, &[QUANTITY])]);
pub const RATIO: Ty =
    Ty::Complex("Ratio", &[el("numerator", 0, ONE, &[QUANTITY]), el("denominator", 0, ONE, &[QUANTITY])]);
pub const ATTACHMENT: Ty = Ty::Complex(
    "Attachment",
    &[
        el("contentType", 0, ONE, &[Ty::Code]),
        el("language", 0, ONE, &[Ty::Code]),
        el("data", 0, ONE, &[Ty::Base64Binary]),
        el("url", 0, ONE, &[Ty::Url]),
        el("size", 0, ONE, &[Ty::UnsignedInt]),
        el("hash", 0, ONE, &[Ty::Base64Binary]),
        el("title", 0, ONE, &[Ty::String]),
        el("creation", 0, ONE, &[Ty::DateTime]),
    ],
);
pub const ANNOTATION: Ty = Ty::Complex(
    "Annotation",
    &[
        el("author[x]", 0, ONE, &[REFERENCE, Ty::String]),
        el("time", 0, ONE, &[Ty::DateTime]),
        el("text", 1, ONE, &[Ty::Markdown]),
    ],
);
pub const META: Ty = Ty::Complex(
    "Meta",
    &[
        el("versionId", 0, ONE, &[Ty::Id]),
        el("lastUpdated", 0, ONE, &[Ty::Instant]),
        el("source", 0, ONE, &[Ty::Uri]),
        el("profile", 0, MANY, &[Ty::Canonical]),
        el("security", 0, MANY, &[CODING]),
        el("tag", 0, MANY, &[CODING]),
    ],
);
pub const NARRATIVE: Ty = Ty::Complex(
    "Narrative",
    &[code("status", 1, &["generated", "extensions", "additional", "empty"]), el("div", 1, ONE, &[Ty::Xhtml])],
);
/// The types an extension's `value[x]` may take here (the R4 list is longer: the rest are
/// refused as unsupported, not as wrong).
const EXTENSION_VALUES: &[Ty] = &[
    Ty::Boolean,
    Ty::Integer,
    Ty::Decimal,
    Ty::String,
    Ty::Code,
    Ty::Uri,
    Ty::Date,
    Ty::DateTime,
    Ty::Instant,
    CODING,
    CODEABLE_CONCEPT,
    IDENTIFIER,
    PERIOD,
    QUANTITY,
    REFERENCE,
    ADDRESS,
];

/// Elements every resource has (Resource and DomainResource), before its own.
const RESOURCE_BASE: &[El] = &[
    el("id", 0, ONE, &[Ty::Id]),
    el("meta", 0, ONE, &[META]),
    el("implicitRules", 0, ONE, &[Ty::Uri]),
    el("language", 0, ONE, &[Ty::Code]),
    el("text", 0, ONE, &[NARRATIVE]),
];

const PATIENT: &[El] = &[
    el("identifier", 0, MANY, &[IDENTIFIER]),
    el("active", 0, ONE, &[Ty::Boolean]),
    el("name", 0, MANY, &[HUMAN_NAME]),
    el("telecom", 0, MANY, &[CONTACT_POINT]),
    code("gender", 0, ADMINISTRATIVE_GENDER),
    el("birthDate", 0, ONE, &[Ty::Date]),
    el("deceased[x]", 0, ONE, &[Ty::Boolean, Ty::DateTime]),
    el("address", 0, MANY, &[ADDRESS]),
    el("maritalStatus", 0, ONE, &[CODEABLE_CONCEPT]),
    el("multipleBirth[x]", 0, ONE, &[Ty::Boolean, Ty::Integer]),
    el("photo", 0, MANY, &[ATTACHMENT]),
    el(
        "contact",
        0,
        MANY,
        &[Ty::Complex(
            "BackboneElement",
            &[
                el("relationship", 0, MANY, &[CODEABLE_CONCEPT]),
                el("name", 0, ONE, &[HUMAN_NAME]),
                el("telecom", 0, MANY, &[CONTACT_POINT]),
                el("address", 0, ONE, &[ADDRESS]),
                code("gender", 0, ADMINISTRATIVE_GENDER),
                el("organization", 0, ONE, &[REFERENCE]),
                el("period", 0, ONE, &[PERIOD]),
            ],
        )],
    ),
    el(
        "communication",
        0,
        MANY,
        &[Ty::Complex(
            "BackboneElement",
            &[el("language", 1, ONE, &[CODEABLE_CONCEPT]), el("preferred", 0, ONE, &[Ty::Boolean])],
        )],
    ),
    el("generalPractitioner", 0, MANY, &[REFERENCE]),
    el("managingOrganization", 0, ONE, &[REFERENCE]),
    el(
        "link",
        0,
        MANY,
        &[Ty::Complex(
            "BackboneElement",
            &[el("other", 1, ONE, &[REFERENCE]), code("type", 1, &["replaced-by", "replaces", "refer", "seealso"])],
        )],
    ),
];

const ORGANIZATION: &[El] = &[
    el("identifier", 0, MANY, &[IDENTIFIER]),
    el("active", 0, ONE, &[Ty::Boolean]),
    el("type", 0, MANY, &[CODEABLE_CONCEPT]),
    el("name", 0, ONE, &[Ty::String]),
    el("alias", 0, MANY, &[Ty::String]),
    el("telecom", 0, MANY, &[CONTACT_POINT]),
    el("address", 0, MANY, &[ADDRESS]),
    el("partOf", 0, ONE, &[REFERENCE]),
    el(
        "contact",
        0,
        MANY,
        &[Ty::Complex(
            "BackboneElement",
            &[
                el("purpose", 0, ONE, &[CODEABLE_CONCEPT]),
                el("name", 0, ONE, &[HUMAN_NAME]),
                el("telecom", 0, MANY, &[CONTACT_POINT]),
                el("address", 0, ONE, &[ADDRESS]),
            ],
        )],
    ),
    el("endpoint", 0, MANY, &[REFERENCE]),
];

const OBSERVATION_VALUE: &[Ty] =
    &[QUANTITY, CODEABLE_CONCEPT, Ty::String, Ty::Boolean, Ty::Integer, RANGE, RATIO, Ty::DateTime, PERIOD];

/// The `evidence` backbone element Condition and DetectedIssue share: codes and references.
const EVIDENCE: El = el(
    "evidence",
    0,
    MANY,
    &[Ty::Complex("BackboneElement", &[el("code", 0, MANY, &[CODEABLE_CONCEPT]), el("detail", 0, MANY, &[REFERENCE])])],
);

/// R4 `observation-status`, which DetectedIssue's status takes too.
const OBSERVATION_STATUS: &[&str] =
    &["registered", "preliminary", "final", "amended", "corrected", "cancelled", "entered-in-error", "unknown"];

const OBSERVATION: &[El] = &[
    el("identifier", 0, MANY, &[IDENTIFIER]),
    el("basedOn", 0, MANY, &[REFERENCE]),
    el("partOf", 0, MANY, &[REFERENCE]),
    code("status", 1, OBSERVATION_STATUS),
    el("category", 0, MANY, &[CODEABLE_CONCEPT]),
    el("code", 1, ONE, &[CODEABLE_CONCEPT]),
    el("subject", 0, ONE, &[REFERENCE]),
    el("focus", 0, MANY, &[REFERENCE]),
    el("encounter", 0, ONE, &[REFERENCE]),
    el("effective[x]", 0, ONE, &[Ty::DateTime, PERIOD, Ty::Instant]),
    el("issued", 0, ONE, &[Ty::Instant]),
    el("performer", 0, MANY, &[REFERENCE]),
    el("value[x]", 0, ONE, OBSERVATION_VALUE),
    el("dataAbsentReason", 0, ONE, &[CODEABLE_CONCEPT]),
    el("interpretation", 0, MANY, &[CODEABLE_CONCEPT]),
    el("note", 0, MANY, &[ANNOTATION]),
    el("bodySite", 0, ONE, &[CODEABLE_CONCEPT]),
    el("method", 0, ONE, &[CODEABLE_CONCEPT]),
    el("specimen", 0, ONE, &[REFERENCE]),
    el("device", 0, ONE, &[REFERENCE]),
    el(
        "referenceRange",
        0,
        MANY,
        &[Ty::Complex(
            "BackboneElement",
            &[
                el("low", 0, ONE, &[QUANTITY]),
                el("high", 0, ONE, &[QUANTITY]),
                el("type", 0, ONE, &[CODEABLE_CONCEPT]),
                el("appliesTo", 0, MANY, &[CODEABLE_CONCEPT]),
                el("age", 0, ONE, &[RANGE]),
                el("text", 0, ONE, &[Ty::String]),
            ],
        )],
    ),
    el("hasMember", 0, MANY, &[REFERENCE]),
    el("derivedFrom", 0, MANY, &[REFERENCE]),
    el(
        "component",
        0,
        MANY,
        &[Ty::Complex(
            "BackboneElement",
            &[
                el("code", 1, ONE, &[CODEABLE_CONCEPT]),
                el("value[x]", 0, ONE, OBSERVATION_VALUE),
                el("dataAbsentReason", 0, ONE, &[CODEABLE_CONCEPT]),
                el("interpretation", 0, MANY, &[CODEABLE_CONCEPT]),
            ],
        )],
    ),
];

const CONDITION: &[El] = &[
    el("identifier", 0, MANY, &[IDENTIFIER]),
    el("clinicalStatus", 0, ONE, &[CODEABLE_CONCEPT]),
    el("verificationStatus", 0, ONE, &[CODEABLE_CONCEPT]),
    el("category", 0, MANY, &[CODEABLE_CONCEPT]),
    el("severity", 0, ONE, &[CODEABLE_CONCEPT]),
    el("code", 0, ONE, &[CODEABLE_CONCEPT]),
    el("bodySite", 0, MANY, &[CODEABLE_CONCEPT]),
    el("subject", 1, ONE, &[REFERENCE]),
    el("encounter", 0, ONE, &[REFERENCE]),
    el("onset[x]", 0, ONE, &[Ty::DateTime, AGE, PERIOD, RANGE, Ty::String]),
    el("abatement[x]", 0, ONE, &[Ty::DateTime, AGE, PERIOD, RANGE, Ty::String]),
    el("recordedDate", 0, ONE, &[Ty::DateTime]),
    el("recorder", 0, ONE, &[REFERENCE]),
    el("asserter", 0, ONE, &[REFERENCE]),
    el(
        "stage",
        0,
        MANY,
        &[Ty::Complex(
            "BackboneElement",
            &[
                el("summary", 0, ONE, &[CODEABLE_CONCEPT]),
                el("assessment", 0, MANY, &[REFERENCE]),
                el("type", 0, ONE, &[CODEABLE_CONCEPT]),
            ],
        )],
    ),
    EVIDENCE,
    el("note", 0, MANY, &[ANNOTATION]),
];

const ENCOUNTER_STATUS: &[&str] = &[
    "planned",
    "arrived",
    "triaged",
    "in-progress",
    "onleave",
    "finished",
    "cancelled",
    "entered-in-error",
    "unknown",
];

const ENCOUNTER: &[El] = &[
    el("identifier", 0, MANY, &[IDENTIFIER]),
    code("status", 1, ENCOUNTER_STATUS),
    el(
        "statusHistory",
        0,
        MANY,
        &[Ty::Complex("BackboneElement", &[code("status", 1, ENCOUNTER_STATUS), el("period", 1, ONE, &[PERIOD])])],
    ),
    el("class", 1, ONE, &[CODING]),
    el(
        "classHistory",
        0,
        MANY,
        &[Ty::Complex("BackboneElement", &[el("class", 1, ONE, &[CODING]), el("period", 1, ONE, &[PERIOD])])],
    ),
    el("type", 0, MANY, &[CODEABLE_CONCEPT]),
    el("serviceType", 0, ONE, &[CODEABLE_CONCEPT]),
    el("priority", 0, ONE, &[CODEABLE_CONCEPT]),
    el("subject", 0, ONE, &[REFERENCE]),
    el("episodeOfCare", 0, MANY, &[REFERENCE]),
    el("basedOn", 0, MANY, &[REFERENCE]),
    el(
        "participant",
        0,
        MANY,
        &[Ty::Complex(
            "BackboneElement",
            &[
                el("type", 0, MANY, &[CODEABLE_CONCEPT]),
                el("period", 0, ONE, &[PERIOD]),
                el("individual", 0, ONE, &[REFERENCE]),
            ],
        )],
    ),
    el("appointment", 0, MANY, &[REFERENCE]),
    el("period", 0, ONE, &[PERIOD]),
    el("length", 0, ONE, &[DURATION]),
    el("reasonCode", 0, MANY, &[CODEABLE_CONCEPT]),
    el("reasonReference", 0, MANY, &[REFERENCE]),
    el(
        "diagnosis",
        0,
        MANY,
        &[Ty::Complex(
            "BackboneElement",
            &[
                el("condition", 1, ONE, &[REFERENCE]),
                el("use", 0, ONE, &[CODEABLE_CONCEPT]),
                el("rank", 0, ONE, &[Ty::PositiveInt]),
            ],
        )],
    ),
    el("account", 0, MANY, &[REFERENCE]),
    el(
        "hospitalization",
        0,
        ONE,
        &[Ty::Complex(
            "BackboneElement",
            &[
                el("preAdmissionIdentifier", 0, ONE, &[IDENTIFIER]),
                el("origin", 0, ONE, &[REFERENCE]),
                el("admitSource", 0, ONE, &[CODEABLE_CONCEPT]),
                el("reAdmission", 0, ONE, &[CODEABLE_CONCEPT]),
                el("dietPreference", 0, MANY, &[CODEABLE_CONCEPT]),
                el("specialCourtesy", 0, MANY, &[CODEABLE_CONCEPT]),
                el("specialArrangement", 0, MANY, &[CODEABLE_CONCEPT]),
                el("destination", 0, ONE, &[REFERENCE]),
                el("dischargeDisposition", 0, ONE, &[CODEABLE_CONCEPT]),
            ],
        )],
    ),
    el(
        "location",
        0,
        MANY,
        &[Ty::Complex(
            "BackboneElement",
            &[
                el("location", 1, ONE, &[REFERENCE]),
                code("status", 0, &["planned", "active", "reserved", "completed"]),
                el("physicalType", 0, ONE, &[CODEABLE_CONCEPT]),
                el("period", 0, ONE, &[PERIOD]),
            ],
        )],
    ),
    el("serviceProvider", 0, ONE, &[REFERENCE]),
    el("partOf", 0, ONE, &[REFERENCE]),
];

const TIMING: Ty = Ty::Complex(
    "Timing",
    &[
        el("event", 0, MANY, &[Ty::DateTime]),
        el(
            "repeat",
            0,
            ONE,
            &[Ty::Complex(
                "Element",
                &[
                    el("bounds[x]", 0, ONE, &[DURATION, RANGE, PERIOD]),
                    el("count", 0, ONE, &[Ty::PositiveInt]),
                    el("countMax", 0, ONE, &[Ty::PositiveInt]),
                    el("duration", 0, ONE, &[Ty::Decimal]),
                    el("durationMax", 0, ONE, &[Ty::Decimal]),
                    code("durationUnit", 0, UNITS_OF_TIME),
                    el("frequency", 0, ONE, &[Ty::PositiveInt]),
                    el("frequencyMax", 0, ONE, &[Ty::PositiveInt]),
                    el("period", 0, ONE, &[Ty::Decimal]),
                    el("periodMax", 0, ONE, &[Ty::Decimal]),
                    code("periodUnit", 0, UNITS_OF_TIME),
                    El { name: "dayOfWeek", min: 0, max: MANY, types: &[Ty::Code], codes: Some(DAYS_OF_WEEK) },
                    el("timeOfDay", 0, MANY, &[Ty::Time]),
                    el("when", 0, MANY, &[Ty::Code]),
                    el("offset", 0, ONE, &[Ty::UnsignedInt]),
                ],
            )],
        ),
        el("code", 0, ONE, &[CODEABLE_CONCEPT]),
    ],
);
const UNITS_OF_TIME: &[&str] = &["s", "min", "h", "d", "wk", "mo", "a"];

pub const DOSAGE: Ty = Ty::Complex(
    "Dosage",
    &[
        el("sequence", 0, ONE, &[Ty::Integer]),
        el("text", 0, ONE, &[Ty::String]),
        el("additionalInstruction", 0, MANY, &[CODEABLE_CONCEPT]),
        el("patientInstruction", 0, ONE, &[Ty::String]),
        el("timing", 0, ONE, &[TIMING]),
        el("asNeeded[x]", 0, ONE, &[Ty::Boolean, CODEABLE_CONCEPT]),
        el("site", 0, ONE, &[CODEABLE_CONCEPT]),
        el("route", 0, ONE, &[CODEABLE_CONCEPT]),
        el("method", 0, ONE, &[CODEABLE_CONCEPT]),
        el(
            "doseAndRate",
            0,
            MANY,
            &[Ty::Complex(
                "Element",
                &[
                    el("type", 0, ONE, &[CODEABLE_CONCEPT]),
                    el("dose[x]", 0, ONE, &[RANGE, QUANTITY]),
                    el("rate[x]", 0, ONE, &[RATIO, RANGE, QUANTITY]),
                ],
            )],
        ),
        el("maxDosePerPeriod", 0, ONE, &[RATIO]),
        el("maxDosePerAdministration", 0, ONE, &[QUANTITY]),
        el("maxDosePerLifetime", 0, ONE, &[QUANTITY]),
    ],
);

const ALLERGY_INTOLERANCE: &[El] = &[
    el("identifier", 0, MANY, &[IDENTIFIER]),
    el("clinicalStatus", 0, ONE, &[CODEABLE_CONCEPT]),
    el("verificationStatus", 0, ONE, &[CODEABLE_CONCEPT]),
    code("type", 0, &["allergy", "intolerance"]),
    El {
        name: "category",
        min: 0,
        max: MANY,
        types: &[Ty::Code],
        codes: Some(&["food", "medication", "environment", "biologic"]),
    },
    code("criticality", 0, &["low", "high", "unable-to-assess"]),
    el("code", 0, ONE, &[CODEABLE_CONCEPT]),
    el("patient", 1, ONE, &[REFERENCE]),
    el("encounter", 0, ONE, &[REFERENCE]),
    el("onset[x]", 0, ONE, &[Ty::DateTime, AGE, PERIOD, RANGE, Ty::String]),
    el("recordedDate", 0, ONE, &[Ty::DateTime]),
    el("recorder", 0, ONE, &[REFERENCE]),
    el("asserter", 0, ONE, &[REFERENCE]),
    el("lastOccurrence", 0, ONE, &[Ty::DateTime]),
    el("note", 0, MANY, &[ANNOTATION]),
    el(
        "reaction",
        0,
        MANY,
        &[Ty::Complex(
            "BackboneElement",
            &[
                el("substance", 0, ONE, &[CODEABLE_CONCEPT]),
                el("manifestation", 1, MANY, &[CODEABLE_CONCEPT]),
                el("description", 0, ONE, &[Ty::String]),
                el("onset", 0, ONE, &[Ty::DateTime]),
                code("severity", 0, &["mild", "moderate", "severe"]),
                el("exposureRoute", 0, ONE, &[CODEABLE_CONCEPT]),
                el("note", 0, MANY, &[ANNOTATION]),
            ],
        )],
    ),
];

const IMMUNIZATION: &[El] = &[
    el("identifier", 0, MANY, &[IDENTIFIER]),
    code("status", 1, &["completed", "entered-in-error", "not-done"]),
    el("statusReason", 0, ONE, &[CODEABLE_CONCEPT]),
    el("vaccineCode", 1, ONE, &[CODEABLE_CONCEPT]),
    el("patient", 1, ONE, &[REFERENCE]),
    el("encounter", 0, ONE, &[REFERENCE]),
    el("occurrence[x]", 1, ONE, &[Ty::DateTime, Ty::String]),
    el("recorded", 0, ONE, &[Ty::DateTime]),
    el("primarySource", 0, ONE, &[Ty::Boolean]),
    el("reportOrigin", 0, ONE, &[CODEABLE_CONCEPT]),
    el("location", 0, ONE, &[REFERENCE]),
    el("manufacturer", 0, ONE, &[REFERENCE]),
    el("lotNumber", 0, ONE, &[Ty::String]),
    el("expirationDate", 0, ONE, &[Ty::Date]),
    el("site", 0, ONE, &[CODEABLE_CONCEPT]),
    el("route", 0, ONE, &[CODEABLE_CONCEPT]),
    el("doseQuantity", 0, ONE, &[QUANTITY]),
    el(
        "performer",
        0,
        MANY,
        &[Ty::Complex(
            "BackboneElement",
            &[el("function", 0, ONE, &[CODEABLE_CONCEPT]), el("actor", 1, ONE, &[REFERENCE])],
        )],
    ),
    el("note", 0, MANY, &[ANNOTATION]),
    el("reasonCode", 0, MANY, &[CODEABLE_CONCEPT]),
    el("reasonReference", 0, MANY, &[REFERENCE]),
    el("isSubpotent", 0, ONE, &[Ty::Boolean]),
    el("subpotentReason", 0, MANY, &[CODEABLE_CONCEPT]),
    el(
        "education",
        0,
        MANY,
        &[Ty::Complex(
            "BackboneElement",
            &[
                el("documentType", 0, ONE, &[Ty::String]),
                el("reference", 0, ONE, &[Ty::Uri]),
                el("publicationDate", 0, ONE, &[Ty::DateTime]),
                el("presentationDate", 0, ONE, &[Ty::DateTime]),
            ],
        )],
    ),
    el("programEligibility", 0, MANY, &[CODEABLE_CONCEPT]),
    el("fundingSource", 0, ONE, &[CODEABLE_CONCEPT]),
    el(
        "reaction",
        0,
        MANY,
        &[Ty::Complex(
            "BackboneElement",
            &[
                el("date", 0, ONE, &[Ty::DateTime]),
                el("detail", 0, ONE, &[REFERENCE]),
                el("reported", 0, ONE, &[Ty::Boolean]),
            ],
        )],
    ),
    el(
        "protocolApplied",
        0,
        MANY,
        &[Ty::Complex(
            "BackboneElement",
            &[
                el("series", 0, ONE, &[Ty::String]),
                el("authority", 0, ONE, &[REFERENCE]),
                el("targetDisease", 0, MANY, &[CODEABLE_CONCEPT]),
                el("doseNumber[x]", 1, ONE, &[Ty::PositiveInt, Ty::String]),
                el("seriesDoses[x]", 0, ONE, &[Ty::PositiveInt, Ty::String]),
            ],
        )],
    ),
];

const MEDICATION_REQUEST: &[El] = &[
    el("identifier", 0, MANY, &[IDENTIFIER]),
    code(
        "status",
        1,
        &["active", "on-hold", "cancelled", "completed", "entered-in-error", "stopped", "draft", "unknown"],
    ),
    el("statusReason", 0, ONE, &[CODEABLE_CONCEPT]),
    code(
        "intent",
        1,
        &["proposal", "plan", "order", "original-order", "reflex-order", "filler-order", "instance-order", "option"],
    ),
    el("category", 0, MANY, &[CODEABLE_CONCEPT]),
    code("priority", 0, &["routine", "urgent", "asap", "stat"]),
    el("doNotPerform", 0, ONE, &[Ty::Boolean]),
    el("reported[x]", 0, ONE, &[Ty::Boolean, REFERENCE]),
    el("medication[x]", 1, ONE, &[CODEABLE_CONCEPT, REFERENCE]),
    el("subject", 1, ONE, &[REFERENCE]),
    el("encounter", 0, ONE, &[REFERENCE]),
    el("supportingInformation", 0, MANY, &[REFERENCE]),
    el("authoredOn", 0, ONE, &[Ty::DateTime]),
    el("requester", 0, ONE, &[REFERENCE]),
    el("performer", 0, ONE, &[REFERENCE]),
    el("performerType", 0, ONE, &[CODEABLE_CONCEPT]),
    el("recorder", 0, ONE, &[REFERENCE]),
    el("reasonCode", 0, MANY, &[CODEABLE_CONCEPT]),
    el("reasonReference", 0, MANY, &[REFERENCE]),
    el("instantiatesCanonical", 0, MANY, &[Ty::Canonical]),
    el("instantiatesUri", 0, MANY, &[Ty::Uri]),
    el("basedOn", 0, MANY, &[REFERENCE]),
    el("groupIdentifier", 0, ONE, &[IDENTIFIER]),
    el("courseOfTherapyType", 0, ONE, &[CODEABLE_CONCEPT]),
    el("insurance", 0, MANY, &[REFERENCE]),
    el("note", 0, MANY, &[ANNOTATION]),
    el("dosageInstruction", 0, MANY, &[DOSAGE]),
    el(
        "dispenseRequest",
        0,
        ONE,
        &[Ty::Complex(
            "BackboneElement",
            &[
                el(
                    "initialFill",
                    0,
                    ONE,
                    &[Ty::Complex(
                        "BackboneElement",
                        &[el("quantity", 0, ONE, &[QUANTITY]), el("duration", 0, ONE, &[DURATION])],
                    )],
                ),
                el("dispenseInterval", 0, ONE, &[DURATION]),
                el("validityPeriod", 0, ONE, &[PERIOD]),
                el("numberOfRepeatsAllowed", 0, ONE, &[Ty::UnsignedInt]),
                el("quantity", 0, ONE, &[QUANTITY]),
                el("expectedSupplyDuration", 0, ONE, &[DURATION]),
                el("performer", 0, ONE, &[REFERENCE]),
            ],
        )],
    ),
    el(
        "substitution",
        0,
        ONE,
        &[Ty::Complex(
            "BackboneElement",
            &[el("allowed[x]", 1, ONE, &[Ty::Boolean, CODEABLE_CONCEPT]), el("reason", 0, ONE, &[CODEABLE_CONCEPT])],
        )],
    ),
    el("priorPrescription", 0, ONE, &[REFERENCE]),
    el("detectedIssue", 0, MANY, &[REFERENCE]),
    el("eventHistory", 0, MANY, &[REFERENCE]),
];

const MEDICATION_STATEMENT: &[El] = &[
    el("identifier", 0, MANY, &[IDENTIFIER]),
    el("basedOn", 0, MANY, &[REFERENCE]),
    el("partOf", 0, MANY, &[REFERENCE]),
    code(
        "status",
        1,
        &["active", "completed", "entered-in-error", "intended", "stopped", "on-hold", "unknown", "not-taken"],
    ),
    el("statusReason", 0, MANY, &[CODEABLE_CONCEPT]),
    el("category", 0, ONE, &[CODEABLE_CONCEPT]),
    el("medication[x]", 1, ONE, &[CODEABLE_CONCEPT, REFERENCE]),
    el("subject", 1, ONE, &[REFERENCE]),
    el("context", 0, ONE, &[REFERENCE]),
    el("effective[x]", 0, ONE, &[Ty::DateTime, PERIOD]),
    el("dateAsserted", 0, ONE, &[Ty::DateTime]),
    el("informationSource", 0, ONE, &[REFERENCE]),
    el("derivedFrom", 0, MANY, &[REFERENCE]),
    el("reasonCode", 0, MANY, &[CODEABLE_CONCEPT]),
    el("reasonReference", 0, MANY, &[REFERENCE]),
    el("note", 0, MANY, &[ANNOTATION]),
    el("dosage", 0, MANY, &[DOSAGE]),
];

const PRACTITIONER: &[El] = &[
    el("identifier", 0, MANY, &[IDENTIFIER]),
    el("active", 0, ONE, &[Ty::Boolean]),
    el("name", 0, MANY, &[HUMAN_NAME]),
    el("telecom", 0, MANY, &[CONTACT_POINT]),
    el("address", 0, MANY, &[ADDRESS]),
    code("gender", 0, ADMINISTRATIVE_GENDER),
    el("birthDate", 0, ONE, &[Ty::Date]),
    el("photo", 0, MANY, &[ATTACHMENT]),
    el(
        "qualification",
        0,
        MANY,
        &[Ty::Complex(
            "BackboneElement",
            &[
                el("identifier", 0, MANY, &[IDENTIFIER]),
                el("code", 1, ONE, &[CODEABLE_CONCEPT]),
                el("period", 0, ONE, &[PERIOD]),
                el("issuer", 0, ONE, &[REFERENCE]),
            ],
        )],
    ),
    el("communication", 0, MANY, &[CODEABLE_CONCEPT]),
];

const PRACTITIONER_ROLE: &[El] = &[
    el("identifier", 0, MANY, &[IDENTIFIER]),
    el("active", 0, ONE, &[Ty::Boolean]),
    el("period", 0, ONE, &[PERIOD]),
    el("practitioner", 0, ONE, &[REFERENCE]),
    el("organization", 0, ONE, &[REFERENCE]),
    el("code", 0, MANY, &[CODEABLE_CONCEPT]),
    el("specialty", 0, MANY, &[CODEABLE_CONCEPT]),
    el("location", 0, MANY, &[REFERENCE]),
    el("healthcareService", 0, MANY, &[REFERENCE]),
    el("telecom", 0, MANY, &[CONTACT_POINT]),
    el(
        "availableTime",
        0,
        MANY,
        &[Ty::Complex(
            "BackboneElement",
            &[
                El { name: "daysOfWeek", min: 0, max: MANY, types: &[Ty::Code], codes: Some(DAYS_OF_WEEK) },
                el("allDay", 0, ONE, &[Ty::Boolean]),
                el("availableStartTime", 0, ONE, &[Ty::Time]),
                el("availableEndTime", 0, ONE, &[Ty::Time]),
            ],
        )],
    ),
    el(
        "notAvailable",
        0,
        MANY,
        &[Ty::Complex("BackboneElement", &[el("description", 1, ONE, &[Ty::String]), el("during", 0, ONE, &[PERIOD])])],
    ),
    el("availabilityExceptions", 0, ONE, &[Ty::String]),
    el("endpoint", 0, MANY, &[REFERENCE]),
];

const DIAGNOSTIC_REPORT: &[El] = &[
    el("identifier", 0, MANY, &[IDENTIFIER]),
    el("basedOn", 0, MANY, &[REFERENCE]),
    code(
        "status",
        1,
        &[
            "registered",
            "partial",
            "preliminary",
            "final",
            "amended",
            "corrected",
            "appended",
            "cancelled",
            "entered-in-error",
            "unknown",
        ],
    ),
    el("category", 0, MANY, &[CODEABLE_CONCEPT]),
    el("code", 1, ONE, &[CODEABLE_CONCEPT]),
    el("subject", 0, ONE, &[REFERENCE]),
    el("encounter", 0, ONE, &[REFERENCE]),
    el("effective[x]", 0, ONE, &[Ty::DateTime, PERIOD]),
    el("issued", 0, ONE, &[Ty::Instant]),
    el("performer", 0, MANY, &[REFERENCE]),
    el("resultsInterpreter", 0, MANY, &[REFERENCE]),
    el("specimen", 0, MANY, &[REFERENCE]),
    el("result", 0, MANY, &[REFERENCE]),
    el("imagingStudy", 0, MANY, &[REFERENCE]),
    el(
        "media",
        0,
        MANY,
        &[Ty::Complex("BackboneElement", &[el("comment", 0, ONE, &[Ty::String]), el("link", 1, ONE, &[REFERENCE])])],
    ),
    el("conclusion", 0, ONE, &[Ty::String]),
    el("conclusionCode", 0, MANY, &[CODEABLE_CONCEPT]),
    el("presentedForm", 0, MANY, &[ATTACHMENT]),
];

const DOCUMENT_REFERENCE: &[El] = &[
    el("masterIdentifier", 0, ONE, &[IDENTIFIER]),
    el("identifier", 0, MANY, &[IDENTIFIER]),
    code("status", 1, &["current", "superseded", "entered-in-error"]),
    code("docStatus", 0, &["preliminary", "final", "amended", "entered-in-error"]),
    el("type", 0, ONE, &[CODEABLE_CONCEPT]),
    el("category", 0, MANY, &[CODEABLE_CONCEPT]),
    el("subject", 0, ONE, &[REFERENCE]),
    el("date", 0, ONE, &[Ty::Instant]),
    el("author", 0, MANY, &[REFERENCE]),
    el("authenticator", 0, ONE, &[REFERENCE]),
    el("custodian", 0, ONE, &[REFERENCE]),
    el(
        "relatesTo",
        0,
        MANY,
        &[Ty::Complex(
            "BackboneElement",
            &[code("code", 1, &["replaces", "transforms", "signs", "appends"]), el("target", 1, ONE, &[REFERENCE])],
        )],
    ),
    el("description", 0, ONE, &[Ty::String]),
    el("securityLabel", 0, MANY, &[CODEABLE_CONCEPT]),
    el(
        "content",
        1,
        MANY,
        &[Ty::Complex("BackboneElement", &[el("attachment", 1, ONE, &[ATTACHMENT]), el("format", 0, ONE, &[CODING])])],
    ),
    el(
        "context",
        0,
        ONE,
        &[Ty::Complex(
            "BackboneElement",
            &[
                el("encounter", 0, MANY, &[REFERENCE]),
                el("event", 0, MANY, &[CODEABLE_CONCEPT]),
                el("period", 0, ONE, &[PERIOD]),
                el("facilityType", 0, ONE, &[CODEABLE_CONCEPT]),
                el("practiceSetting", 0, ONE, &[CODEABLE_CONCEPT]),
                el("sourcePatientInfo", 0, ONE, &[REFERENCE]),
                el("related", 0, MANY, &[REFERENCE]),
            ],
        )],
    ),
];

/// Consent.provision, which nests in itself.
const CONSENT_PROVISION: &[El] = &[
    code("type", 0, &["deny", "permit"]),
    el("period", 0, ONE, &[PERIOD]),
    el(
        "actor",
        0,
        MANY,
        &[Ty::Complex(
            "BackboneElement",
            &[el("role", 1, ONE, &[CODEABLE_CONCEPT]), el("reference", 1, ONE, &[REFERENCE])],
        )],
    ),
    el("action", 0, MANY, &[CODEABLE_CONCEPT]),
    el("securityLabel", 0, MANY, &[CODING]),
    el("purpose", 0, MANY, &[CODING]),
    el("class", 0, MANY, &[CODING]),
    el("code", 0, MANY, &[CODEABLE_CONCEPT]),
    el("dataPeriod", 0, ONE, &[PERIOD]),
    el(
        "data",
        0,
        MANY,
        &[Ty::Complex(
            "BackboneElement",
            &[
                code("meaning", 1, &["instance", "related", "dependents", "authoredby"]),
                el("reference", 1, ONE, &[REFERENCE]),
            ],
        )],
    ),
    el("provision", 0, MANY, &[Ty::Same]),
];

const CONSENT: &[El] = &[
    el("identifier", 0, MANY, &[IDENTIFIER]),
    code("status", 1, &["draft", "proposed", "active", "rejected", "inactive", "entered-in-error"]),
    el("scope", 1, ONE, &[CODEABLE_CONCEPT]),
    el("category", 1, MANY, &[CODEABLE_CONCEPT]),
    el("patient", 0, ONE, &[REFERENCE]),
    el("dateTime", 0, ONE, &[Ty::DateTime]),
    el("performer", 0, MANY, &[REFERENCE]),
    el("organization", 0, MANY, &[REFERENCE]),
    el("source[x]", 0, ONE, &[ATTACHMENT, REFERENCE]),
    el(
        "policy",
        0,
        MANY,
        &[Ty::Complex("BackboneElement", &[el("authority", 0, ONE, &[Ty::Uri]), el("uri", 0, ONE, &[Ty::Uri])])],
    ),
    el("policyRule", 0, ONE, &[CODEABLE_CONCEPT]),
    el(
        "verification",
        0,
        MANY,
        &[Ty::Complex(
            "BackboneElement",
            &[
                el("verified", 1, ONE, &[Ty::Boolean]),
                el("verifiedWith", 0, ONE, &[REFERENCE]),
                el("verificationDate", 0, ONE, &[Ty::DateTime]),
            ],
        )],
    ),
    el("provision", 0, ONE, &[Ty::Complex("BackboneElement", CONSENT_PROVISION)]),
];

pub const SIGNATURE: Ty = Ty::Complex(
    "Signature",
    &[
        el("type", 1, MANY, &[CODING]),
        el("when", 1, ONE, &[Ty::Instant]),
        el("who", 1, ONE, &[REFERENCE]),
        el("onBehalfOf", 0, ONE, &[REFERENCE]),
        el("targetFormat", 0, ONE, &[Ty::Code]),
        el("sigFormat", 0, ONE, &[Ty::Code]),
        el("data", 0, ONE, &[Ty::Base64Binary]),
    ],
);

const PROVENANCE_AGENT: &[El] = &[
    el("type", 0, ONE, &[CODEABLE_CONCEPT]),
    el("role", 0, MANY, &[CODEABLE_CONCEPT]),
    el("who", 1, ONE, &[REFERENCE]),
    el("onBehalfOf", 0, ONE, &[REFERENCE]),
];

const PROVENANCE: &[El] = &[
    el("target", 1, MANY, &[REFERENCE]),
    el("occurred[x]", 0, ONE, &[PERIOD, Ty::DateTime]),
    el("recorded", 1, ONE, &[Ty::Instant]),
    el("policy", 0, MANY, &[Ty::Uri]),
    el("location", 0, ONE, &[REFERENCE]),
    el("reason", 0, MANY, &[CODEABLE_CONCEPT]),
    el("activity", 0, ONE, &[CODEABLE_CONCEPT]),
    el("agent", 1, MANY, &[Ty::Complex("BackboneElement", PROVENANCE_AGENT)]),
    el(
        "entity",
        0,
        MANY,
        &[Ty::Complex(
            "BackboneElement",
            &[
                code("role", 1, &["derivation", "revision", "quotation", "source", "removal"]),
                el("what", 1, ONE, &[REFERENCE]),
                el("agent", 0, MANY, &[Ty::Complex("BackboneElement", PROVENANCE_AGENT)]),
            ],
        )],
    ),
    el("signature", 0, MANY, &[SIGNATURE]),
];

const IMAGING_STUDY: &[El] = &[
    el("identifier", 0, MANY, &[IDENTIFIER]),
    code("status", 1, &["registered", "available", "cancelled", "entered-in-error", "unknown"]),
    el("modality", 0, MANY, &[CODING]),
    el("subject", 1, ONE, &[REFERENCE]),
    el("encounter", 0, ONE, &[REFERENCE]),
    el("started", 0, ONE, &[Ty::DateTime]),
    el("basedOn", 0, MANY, &[REFERENCE]),
    el("referrer", 0, ONE, &[REFERENCE]),
    el("interpreter", 0, MANY, &[REFERENCE]),
    el("endpoint", 0, MANY, &[REFERENCE]),
    el("numberOfSeries", 0, ONE, &[Ty::UnsignedInt]),
    el("numberOfInstances", 0, ONE, &[Ty::UnsignedInt]),
    el("procedureReference", 0, ONE, &[REFERENCE]),
    el("procedureCode", 0, MANY, &[CODEABLE_CONCEPT]),
    el("location", 0, ONE, &[REFERENCE]),
    el("reasonCode", 0, MANY, &[CODEABLE_CONCEPT]),
    el("reasonReference", 0, MANY, &[REFERENCE]),
    el("note", 0, MANY, &[ANNOTATION]),
    el("description", 0, ONE, &[Ty::String]),
    el(
        "series",
        0,
        MANY,
        &[Ty::Complex(
            "BackboneElement",
            &[
                el("uid", 1, ONE, &[Ty::Id]),
                el("number", 0, ONE, &[Ty::UnsignedInt]),
                el("modality", 1, ONE, &[CODING]),
                el("description", 0, ONE, &[Ty::String]),
                el("numberOfInstances", 0, ONE, &[Ty::UnsignedInt]),
                el("endpoint", 0, MANY, &[REFERENCE]),
                el("bodySite", 0, ONE, &[CODING]),
                el("laterality", 0, ONE, &[CODING]),
                el("specimen", 0, MANY, &[REFERENCE]),
                el("started", 0, ONE, &[Ty::DateTime]),
                el(
                    "performer",
                    0,
                    MANY,
                    &[Ty::Complex(
                        "BackboneElement",
                        &[el("function", 0, ONE, &[CODEABLE_CONCEPT]), el("actor", 1, ONE, &[REFERENCE])],
                    )],
                ),
                el(
                    "instance",
                    0,
                    MANY,
                    &[Ty::Complex(
                        "BackboneElement",
                        &[
                            el("uid", 1, ONE, &[Ty::Id]),
                            el("sopClass", 1, ONE, &[CODING]),
                            el("number", 0, ONE, &[Ty::UnsignedInt]),
                            el("title", 0, ONE, &[Ty::String]),
                        ],
                    )],
                ),
            ],
        )],
    ),
];

/// R4 `group-type`.
const GROUP_TYPE: &[&str] = &["person", "animal", "practitioner", "device", "medication", "substance"];

/// R4 Group, for lists of patients (a cohort, a family doctor's panel) exported together.
/// `characteristic` (a group defined by rules rather than by its members) is not taken.
const GROUP: &[El] = &[
    el("identifier", 0, MANY, &[IDENTIFIER]),
    el("active", 0, ONE, &[Ty::Boolean]),
    code("type", 1, GROUP_TYPE),
    el("actual", 1, ONE, &[Ty::Boolean]),
    el("code", 0, ONE, &[CODEABLE_CONCEPT]),
    el("name", 0, ONE, &[Ty::String]),
    el("quantity", 0, ONE, &[Ty::UnsignedInt]),
    el("managingEntity", 0, ONE, &[REFERENCE]),
    el(
        "member",
        0,
        MANY,
        &[Ty::Complex(
            "BackboneElement",
            &[
                el("entity", 1, ONE, &[REFERENCE]),
                el("period", 0, ONE, &[PERIOD]),
                el("inactive", 0, ONE, &[Ty::Boolean]),
            ],
        )],
    ),
];

/// R4 DetectedIssue: a prescription check's finding (合理用药), written by the platform beside
/// the MedicationRequest it implicates.
const DETECTED_ISSUE: &[El] = &[
    el("identifier", 0, MANY, &[IDENTIFIER]),
    code("status", 1, OBSERVATION_STATUS),
    el("code", 0, ONE, &[CODEABLE_CONCEPT]),
    code("severity", 0, &["high", "moderate", "low"]),
    el("patient", 0, ONE, &[REFERENCE]),
    el("identified[x]", 0, ONE, &[Ty::DateTime, PERIOD]),
    el("author", 0, ONE, &[REFERENCE]),
    el("implicated", 0, MANY, &[REFERENCE]),
    EVIDENCE,
    el("detail", 0, ONE, &[Ty::String]),
    el("reference", 0, ONE, &[Ty::Uri]),
    el(
        "mitigation",
        0,
        MANY,
        &[Ty::Complex(
            "BackboneElement",
            &[
                el("action", 1, ONE, &[CODEABLE_CONCEPT]),
                el("date", 0, ONE, &[Ty::DateTime]),
                el("author", 0, ONE, &[REFERENCE]),
            ],
        )],
    ),
];

const CARE_PLAN: &[El] = &[
    el("identifier", 0, MANY, &[IDENTIFIER]),
    el("basedOn", 0, MANY, &[REFERENCE]),
    el("replaces", 0, MANY, &[REFERENCE]),
    el("partOf", 0, MANY, &[REFERENCE]),
    code("status", 1, &["draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown"]),
    code("intent", 1, &["proposal", "plan", "order", "option"]),
    el("category", 0, MANY, &[CODEABLE_CONCEPT]),
    el("title", 0, ONE, &[Ty::String]),
    el("description", 0, ONE, &[Ty::String]),
    el("subject", 1, ONE, &[REFERENCE]),
    el("encounter", 0, ONE, &[REFERENCE]),
    el("period", 0, ONE, &[PERIOD]),
    el("created", 0, ONE, &[Ty::DateTime]),
    el("author", 0, ONE, &[REFERENCE]),
    el("contributor", 0, MANY, &[REFERENCE]),
    el("careTeam", 0, MANY, &[REFERENCE]),
    el("addresses", 0, MANY, &[REFERENCE]),
    el("supportingInfo", 0, MANY, &[REFERENCE]),
    el("goal", 0, MANY, &[REFERENCE]),
    el(
        "activity",
        0,
        MANY,
        &[Ty::Complex(
            "BackboneElement",
            &[
                el("outcomeCodeableConcept", 0, MANY, &[CODEABLE_CONCEPT]),
                el("outcomeReference", 0, MANY, &[REFERENCE]),
                el("progress", 0, MANY, &[ANNOTATION]),
                el("reference", 0, ONE, &[REFERENCE]),
                el(
                    "detail",
                    0,
                    ONE,
                    &[Ty::Complex(
                        "BackboneElement",
                        &[
                            el("kind", 0, ONE, &[Ty::Code]),
                            el("code", 0, ONE, &[CODEABLE_CONCEPT]),
                            el("reasonCode", 0, MANY, &[CODEABLE_CONCEPT]),
                            el("reasonReference", 0, MANY, &[REFERENCE]),
                            el("goal", 0, MANY, &[REFERENCE]),
                            code(
                                "status",
                                1,
                                &[
                                    "not-started",
                                    "scheduled",
                                    "in-progress",
                                    "on-hold",
                                    "completed",
                                    "cancelled",
                                    "stopped",
                                    "unknown",
                                    "entered-in-error",
                                ],
                            ),
                            el("statusReason", 0, ONE, &[CODEABLE_CONCEPT]),
                            el("doNotPerform", 0, ONE, &[Ty::Boolean]),
                            el("scheduled[x]", 0, ONE, &[TIMING, PERIOD, Ty::String]),
                            el("location", 0, ONE, &[REFERENCE]),
                            el("performer", 0, MANY, &[REFERENCE]),
                            el("description", 0, ONE, &[Ty::String]),
                        ],
                    )],
                ),
            ],
        )],
    ),
    el("note", 0, MANY, &[ANNOTATION]),
];

/// The own elements of a supported resource type.
pub fn definition(resource_type: &str) -> Option<&'static [El]> {
    match resource_type {
        "Patient" => Some(PATIENT),
        "Organization" => Some(ORGANIZATION),
        "Observation" => Some(OBSERVATION),
        "Condition" => Some(CONDITION),
        "Encounter" => Some(ENCOUNTER),
        "AllergyIntolerance" => Some(ALLERGY_INTOLERANCE),
        "Immunization" => Some(IMMUNIZATION),
        "MedicationRequest" => Some(MEDICATION_REQUEST),
        "MedicationStatement" => Some(MEDICATION_STATEMENT),
        "Practitioner" => Some(PRACTITIONER),
        "PractitionerRole" => Some(PRACTITIONER_ROLE),
        "DiagnosticReport" => Some(DIAGNOSTIC_REPORT),
        "DocumentReference" => Some(DOCUMENT_REFERENCE),
        "Consent" => Some(CONSENT),
        "Provenance" => Some(PROVENANCE),
        "ImagingStudy" => Some(IMAGING_STUDY),
        "Group" => Some(GROUP),
        "DetectedIssue" => Some(DETECTED_ISSUE),
        "CarePlan" => Some(CARE_PLAN),
        _ => None,
    }
}

/// An R4 `id`: 1 to 64 letters, digits, `-` and `.`.
pub fn is_id(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

pub const LOINC_SYSTEM: &str = "http://loinc.org";
pub const ICD10_SYSTEM: &str = "http://hl7.org/fhir/sid/icd-10";

/// A LOINC code: up to seven digits, a hyphen and the check digit (LOINC Users' Guide, the mod 10
/// algorithm: Luhn's).
pub fn loinc_ok(code: &str) -> bool {
    let Some((num, check)) = code.split_once('-') else { return false };
    if num.is_empty()
        || num.len() > 7
        || check.len() != 1
        || !num.bytes().chain(check.bytes()).all(|b| b.is_ascii_digit())
    {
        return false;
    }
    let sum: u32 = num
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 0 {
                let x = d * 2;
                x / 10 + x % 10
            } else {
                d
            }
        })
        .sum();
    (10 - sum % 10) % 10 == u32::from(check.as_bytes()[0] - b'0')
}

/// An ICD-10 code: a letter, two digits, then optionally a point and up to eight letters, digits
/// or `x` (the national clinical edition's extensions of GB/T 14396, e.g. `I10.x00x002`).
pub fn icd10_ok(code: &str) -> bool {
    let b = code.as_bytes();
    if b.len() < 3 || !b[0].is_ascii_uppercase() || !b[1].is_ascii_digit() || !b[2].is_ascii_digit() {
        return false;
    }
    match code[3..].strip_prefix('.') {
        None => code.len() == 3,
        Some(rest) => {
            (1..=8).contains(&rest.len())
                && rest.bytes().all(|c| c.is_ascii_digit() || c.is_ascii_uppercase() || c == b'x')
        }
    }
}

/// One problem found, for an OperationOutcome issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// The OperationOutcome issue type: `structure`, `required`, `value`, `code-invalid`,
    /// `not-supported`.
    pub code: &'static str,
    /// Where, as a FHIRPath-like path (`Patient.name[0].given[1]`).
    pub path: String,
    pub diagnostics: String,
}

struct Check {
    issues: Vec<Issue>,
}

/// At most this many issues are reported (a hostile document could have millions).
const MAX_ISSUES: usize = 100;
/// Nesting deeper than this is refused (contained resources and extensions nest).
const MAX_DEPTH: usize = 32;

impl Check {
    fn issue(&mut self, code: &'static str, path: &str, diagnostics: String) {
        if self.issues.len() < MAX_ISSUES {
            self.issues.push(Issue { code, path: path.to_string(), diagnostics });
        }
    }

    fn primitive(&mut self, ty: &Ty, v: &Value, path: &str, codes: Option<&[&str]>) {
        let s = v.as_str();
        let ok = match ty {
            Ty::Boolean => v.is_boolean(),
            Ty::Integer => v.as_i64().is_some_and(|n| i32::try_from(n).is_ok()),
            Ty::PositiveInt => v.as_i64().is_some_and(|n| n >= 1 && i32::try_from(n).is_ok()),
            Ty::UnsignedInt => v.as_i64().is_some_and(|n| n >= 0 && i32::try_from(n).is_ok()),
            Ty::Decimal => v.is_number(),
            Ty::String | Ty::Markdown | Ty::Xhtml => s.is_some_and(|s| !s.trim().is_empty()),
            // code: no leading or trailing white space, inner single spaces (R4 regex [^\s]+(\s[^\s]+)*).
            Ty::Code => s.is_some_and(|s| {
                !s.is_empty() && s.split(' ').all(|w| !w.is_empty() && !w.contains(char::is_whitespace))
            }),
            Ty::Id => s.is_some_and(is_id),
            Ty::Uri | Ty::Url | Ty::Canonical => s.is_some_and(|s| !s.is_empty() && !s.contains(char::is_whitespace)),
            Ty::Base64Binary => s.is_some_and(|s| {
                s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b' '))
            }),
            Ty::Date => s.is_some_and(|s| datetime::parse(s, Kind::Date, BEIJING).is_ok()),
            Ty::DateTime => s.is_some_and(|s| datetime::parse(s, Kind::DateTime, BEIJING).is_ok()),
            Ty::Instant => s.is_some_and(|s| datetime::parse(s, Kind::Instant, BEIJING).is_ok()),
            Ty::Time => s.is_some_and(|s| datetime::parse(&format!("2000-01-01T{s}Z"), Kind::Instant, BEIJING).is_ok()),
            Ty::Complex(..) | Ty::Same => false,
        };
        if !ok {
            let shown: String = v.to_string().chars().take(40).collect();
            self.issue("value", path, format!("{shown} is not a valid {}", ty.suffix()));
            return;
        }
        if let (Some(codes), Some(s)) = (codes, s) {
            if !codes.contains(&s) {
                let shown: String = s.chars().take(40).collect();
                self.issue("code-invalid", path, format!("{shown:?} is not one of {}", codes.join(", ")));
            }
        }
    }

    /// One value of an element; `here` is the type holding it, for [`Ty::Same`].
    fn value(&mut self, ty: &Ty, v: &Value, path: &str, codes: Option<&[&str]>, depth: usize, here: (&str, &[El])) {
        let (name, elements) = match ty {
            Ty::Complex(name, elements) => (*name, *elements),
            Ty::Same => here,
            _ => return self.primitive(ty, v, path, codes),
        };
        match v.as_object() {
            Some(o) => self.object(name, elements, o, path, depth + 1),
            None => self.issue("structure", path, format!("a {name} is an object")),
        }
    }

    /// Checks an object against its elements: unknown keys, cardinality, types.
    fn object(&mut self, type_name: &str, elements: &[El], o: &Map<String, Value>, path: &str, depth: usize) {
        if depth > MAX_DEPTH {
            self.issue("structure", path, "nested too deeply".into());
            return;
        }
        if o.is_empty() {
            self.issue("structure", path, format!("an empty {type_name}: leave it out instead"));
        }
        let mut seen_choice: Vec<&str> = vec![];
        for (key, v) in o {
            let sub = format!("{path}.{key}");
            match key.as_str() {
                "extension" | "modifierExtension" => {
                    self.extensions(v, &sub, depth);
                    continue;
                }
                "id" if type_name != "resource" => {
                    self.primitive(&Ty::String, v, &sub, None);
                    continue;
                }
                "resourceType" if type_name == "resource" => continue,
                // A primitive's id and extensions (`_birthDate`): checked as an element.
                k if k.starts_with('_') => {
                    if let Some(o) = v.as_object() {
                        self.object("Element", &[], o, &sub, depth + 1);
                    } else if !v.is_array() {
                        self.issue("structure", &sub, "a primitive's extension is an object".into());
                    }
                    continue;
                }
                _ => {}
            }
            let found = elements.iter().find_map(|e| match e.name.strip_suffix("[x]") {
                None if e.name == key => Some((e, None)),
                Some(stem) => key
                    .strip_prefix(stem)
                    .and_then(|suffix| e.types.iter().find(|t| t.suffix() == suffix))
                    .map(|t| (e, Some(t))),
                _ => None,
            });
            let Some((e, choice)) = found else {
                self.issue("structure", &sub, format!("{type_name} has no element {key}"));
                continue;
            };
            if choice.is_some() {
                if seen_choice.contains(&e.name) {
                    self.issue("structure", &sub, format!("{} takes one type only", e.name));
                }
                seen_choice.push(e.name);
            }
            let tys: &[Ty] = match choice {
                Some(t) => std::slice::from_ref(t),
                None => e.types,
            };
            let ty = &tys[0];
            match (e.max, v) {
                (Some(1), Value::Array(_)) => {
                    self.issue("structure", &sub, format!("{key} takes one value, not a list"))
                }
                (None, Value::Array(items)) => {
                    if items.is_empty() {
                        self.issue("structure", &sub, "an empty list: leave it out instead".into());
                    }
                    for (i, item) in items.iter().enumerate() {
                        self.value(ty, item, &format!("{sub}[{i}]"), e.codes, depth, (type_name, elements));
                    }
                }
                (None, _) => self.issue("structure", &sub, format!("{key} is a list")),
                (_, v) => self.value(ty, v, &sub, e.codes, depth, (type_name, elements)),
            }
        }
        if type_name == "Coding" {
            self.coding(o, path);
        }
        for e in elements.iter().filter(|e| e.min > 0) {
            let present = match e.name.strip_suffix("[x]") {
                Some(stem) => o.keys().any(|k| k.starts_with(stem)),
                None => o.contains_key(e.name),
            };
            if !present {
                self.issue("required", &format!("{path}.{}", e.name), format!("{} is required", e.name));
            }
        }
    }

    /// Codes of the code systems we can check without shipping them: a LOINC code's check digit,
    /// an ICD-10 code's form (GB/T 14396 extends the codes after the point).
    fn coding(&mut self, o: &Map<String, Value>, path: &str) {
        let (Some(system), Some(code)) =
            (o.get("system").and_then(Value::as_str), o.get("code").and_then(Value::as_str))
        else {
            return;
        };
        let ok = match system {
            LOINC_SYSTEM => loinc_ok(code),
            ICD10_SYSTEM => icd10_ok(code),
            _ => true,
        };
        if !ok {
            let shown: String = code.chars().take(20).collect();
            self.issue("code-invalid", &format!("{path}.code"), format!("{shown:?} is not a {system} code"));
        }
    }

    fn extensions(&mut self, v: &Value, path: &str, depth: usize) {
        let Some(items) = v.as_array() else {
            self.issue("structure", path, "extensions are a list".into());
            return;
        };
        const EXT: &[El] = &[el("url", 1, ONE, &[Ty::Uri]), el("value[x]", 0, ONE, EXTENSION_VALUES)];
        for (i, item) in items.iter().enumerate() {
            match item.as_object() {
                Some(o) => self.object("Extension", EXT, o, &format!("{path}[{i}]"), depth + 1),
                None => self.issue("structure", &format!("{path}[{i}]"), "an extension is an object".into()),
            }
        }
    }
}

/// Checks a resource's JSON; an empty list means it may be stored. `expected` is the type the
/// request names (`PUT /fhir/Patient/1` takes only a Patient).
pub fn validate(resource: &Value, expected: Option<&str>) -> Vec<Issue> {
    let mut c = Check { issues: vec![] };
    let Some(o) = resource.as_object() else {
        c.issue("structure", "", "a resource is a JSON object".into());
        return c.issues;
    };
    let Some(rt) = o.get("resourceType").and_then(Value::as_str) else {
        c.issue("required", "resourceType", "resourceType is required".into());
        return c.issues;
    };
    if let Some(e) = expected {
        if e != rt {
            c.issue("invalid", "resourceType", format!("this endpoint takes a {e}, not a {rt}"));
            return c.issues;
        }
    }
    let Some(own) = definition(rt) else {
        let shown: String = rt.chars().take(40).collect();
        c.issue("not-supported", "resourceType", format!("{shown} is not supported here"));
        return c.issues;
    };
    let all: Vec<El> = RESOURCE_BASE.iter().chain(own).copied().collect();
    c.object("resource", &all, o, rt, 0);
    c.issues
}

/// The issues as an R4 OperationOutcome.
pub fn operation_outcome(issues: &[Issue]) -> Value {
    serde_json::json!({
        "resourceType": "OperationOutcome",
        "issue": issues.iter().map(|i| serde_json::json!({
            "severity": "error",
            "code": i.code,
            "diagnostics": i.diagnostics,
            "expression": [i.path],
        })).collect::<Vec<_>>()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn paths(v: &Value) -> Vec<(String, &'static str)> {
        validate(v, None).into_iter().map(|i| (i.path, i.code)).collect()
    }

    #[test]
    fn the_generated_district_is_valid() {
        let mut bad = vec![];
        crate::generate::district(300, 9, 2026, |t, v| {
            if definition(t).is_some() {
                let issues = validate(&v, Some(t));
                if !issues.is_empty() {
                    bad.push((v["id"].clone(), issues));
                }
            }
        });
        assert!(bad.is_empty(), "{bad:?}");
    }

    #[test]
    fn structure_cardinality_types_and_codes_are_named_by_path() {
        let p = json!({
            "resourceType": "Patient",
            "id": "p1",
            "name": [{ "family": "王", "given": ["芳", 7] }],
            "gender": "femal",
            "birthDate": "1980-02-30",
            "nickname": "x",
            "telecom": { "system": "phone", "value": "13800000000" },
            "deceasedBoolean": false,
            "deceasedDateTime": "2020-01-01",
            "link": [{ "type": "seealso" }],
            "_birthDate": { "extension": [{ "url": "http://example.org/accuracy", "valueCode": "estimated" }] }
        });
        let got = paths(&p);
        for want in [
            ("Patient.name[0].given[1]", "value"),
            ("Patient.gender", "code-invalid"),
            ("Patient.birthDate", "value"),
            ("Patient.nickname", "structure"),
            ("Patient.telecom", "structure"),
            ("Patient.link[0].other", "required"),
        ] {
            assert!(got.iter().any(|(p, c)| p == want.0 && *c == want.1), "{want:?} in {got:?}");
        }
        assert!(got.iter().any(|(p, _)| p.starts_with("Patient.deceased")), "two types of one choice: {got:?}");
        assert!(!got.iter().any(|(p, _)| p.starts_with("Patient._birthDate")), "primitive extensions are fine");
    }

    #[test]
    fn required_elements_choice_types_and_the_resource_type() {
        let o = json!({ "resourceType": "Observation", "valueQuantity": { "value": 7.2, "unit": "mmol/L" } });
        let got = paths(&o);
        assert!(
            got.contains(&("Observation.status".into(), "required"))
                && got.contains(&("Observation.code".into(), "required")),
            "{got:?}"
        );
        let ok = json!({ "resourceType": "Observation", "status": "final", "code": { "text": "血糖" }, "valueString": "阴性" });
        assert!(paths(&ok).is_empty());
        let wrong_choice =
            json!({ "resourceType": "Observation", "status": "final", "code": { "text": "x" }, "valueMoney": 1 });
        assert_eq!(paths(&wrong_choice), vec![("Observation.valueMoney".to_string(), "structure")]);
        assert_eq!(validate(&json!({ "resourceType": "Patient" }), Some("Observation"))[0].code, "invalid");
        assert_eq!(validate(&json!({ "resourceType": "Spaceship" }), None)[0].code, "not-supported");
        assert_eq!(validate(&json!([1]), None)[0].code, "structure");
        assert_eq!(validate(&json!({ "id": "x" }), None)[0].code, "required");
    }

    #[test]
    fn conditions_and_encounters_take_their_choice_types_and_required_elements() {
        let c = json!({ "resourceType": "Condition", "subject": { "reference": "Patient/p1" }, "onsetAge": { "value": 52, "unit": "a" } });
        assert!(paths(&c).is_empty(), "{:?}", paths(&c));
        let c = json!({ "resourceType": "Condition", "onsetDateTime": "2020-01" });
        assert_eq!(paths(&c), vec![("Condition.subject".to_string(), "required")]);
        let e = json!({ "resourceType": "Encounter", "status": "done", "class": [{ "code": "AMB" }] });
        let got = paths(&e);
        assert!(
            got.contains(&("Encounter.status".into(), "code-invalid"))
                && got.contains(&("Encounter.class".into(), "structure")),
            "{got:?}"
        );
    }

    /// Resources shaped as the R4 specification's own examples (abridged): each validates, and
    /// each loses its validity when a required element goes.
    #[test]
    fn examples_of_the_remaining_resources_validate() {
        let examples = [
            json!({ "resourceType": "AllergyIntolerance", "type": "allergy", "category": ["medication"], "criticality": "high",
                "code": { "coding": [{ "system": "http://snomed.info/sct", "code": "7980", "display": "Penicillin" }] },
                "patient": { "reference": "Patient/p1" }, "onsetDateTime": "2010-03-01",
                "reaction": [{ "manifestation": [{ "text": "皮疹" }], "severity": "moderate" }] }),
            json!({ "resourceType": "Immunization", "status": "completed", "vaccineCode": { "text": "乙肝疫苗" },
                "patient": { "reference": "Patient/p1" }, "occurrenceDateTime": "2013-01-10", "primarySource": true,
                "doseQuantity": { "value": 5, "system": "http://unitsofmeasure.org", "code": "mg" },
                "protocolApplied": [{ "series": "2-dose", "doseNumberPositiveInt": 1 }] }),
            json!({ "resourceType": "MedicationRequest", "status": "active", "intent": "order",
                "medicationCodeableConcept": { "text": "硝苯地平控释片 30 mg" }, "subject": { "reference": "Patient/p1" },
                "authoredOn": "2026-03-01T09:00:00+08:00",
                "dosageInstruction": [{ "text": "每日一次 每次一片", "timing": { "repeat": { "frequency": 1, "period": 1, "periodUnit": "d", "timeOfDay": ["08:00:00"] } },
                    "doseAndRate": [{ "doseQuantity": { "value": 1, "unit": "片" } }] }],
                "dispenseRequest": { "numberOfRepeatsAllowed": 2, "expectedSupplyDuration": { "value": 30, "unit": "days", "system": "http://unitsofmeasure.org", "code": "d" } },
                "substitution": { "allowedBoolean": true } }),
            json!({ "resourceType": "MedicationStatement", "status": "active", "medicationReference": { "reference": "Medication/m1" },
                "subject": { "reference": "Patient/p1" }, "effectivePeriod": { "start": "2026-01-01" }, "dosage": [{ "text": "每日两次" }] }),
            json!({ "resourceType": "Practitioner", "name": [{ "family": "杨", "given": ["明"] }], "gender": "male",
                "qualification": [{ "code": { "text": "执业医师" }, "period": { "start": "2010" } }] }),
            json!({ "resourceType": "PractitionerRole", "practitioner": { "reference": "Practitioner/d1" },
                "organization": { "reference": "Organization/people-hospital" },
                "availableTime": [{ "daysOfWeek": ["mon", "wed"], "availableStartTime": "08:00:00", "availableEndTime": "12:00:00" }],
                "notAvailable": [{ "description": "春节", "during": { "start": "2026-02-16", "end": "2026-02-22" } }] }),
            json!({ "resourceType": "DiagnosticReport", "status": "final", "code": { "text": "血常规" },
                "subject": { "reference": "Patient/p1" }, "issued": "2026-03-01T10:00:00+08:00", "result": [{ "reference": "Observation/o1" }],
                "conclusion": "未见异常" }),
            json!({ "resourceType": "DocumentReference", "status": "current", "subject": { "reference": "Patient/p1" },
                "date": "2026-03-01T10:00:00+08:00",
                "content": [{ "attachment": { "contentType": "application/pdf", "url": "https://example.invalid/files/1", "title": "出院小结" } }] }),
            json!({ "resourceType": "Consent", "status": "active",
                "scope": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy" }] },
                "category": [{ "coding": [{ "system": "http://loinc.org", "code": "59284-0" }] }], "patient": { "reference": "Patient/p1" },
                "dateTime": "2026-03-01", "provision": { "type": "permit", "period": { "start": "2026-03-01", "end": "2027-03-01" },
                    "actor": [{ "role": { "text": "接诊医生" }, "reference": { "reference": "Organization/people-hospital" } }],
                    "provision": [{ "type": "deny", "class": [{ "system": "http://hl7.org/fhir/resource-types", "code": "DocumentReference" }],
                        "provision": [{ "type": "permit", "purpose": [{ "code": "ETREAT" }] }] }] } }),
            json!({ "resourceType": "Provenance", "target": [{ "reference": "Observation/o1/_history/1" }], "recorded": "2026-03-01T10:00:00+08:00",
                "agent": [{ "who": { "reference": "Practitioner/d1" }, "onBehalfOf": { "reference": "Organization/people-hospital" } }],
                "signature": [{ "type": [{ "system": "urn:iso-astm:E1762-95:2013", "code": "1.2.840.10065.1.12.1.1" }],
                    "when": "2026-03-01T10:00:00+08:00", "who": { "reference": "Practitioner/d1" }, "sigFormat": "application/sm2-signature", "data": "MEUCIQ==" }] }),
            json!({ "resourceType": "ImagingStudy", "status": "available", "subject": { "reference": "Patient/p1" }, "started": "2026-03-01T09:30:00+08:00",
                "series": [{ "uid": "2.16.124.113543.6003.2588828330.45298.17418.2723805630", "modality": { "system": "http://dicom.nema.org/resources/ontology/DCM", "code": "CT" },
                    "instance": [{ "uid": "2.16.124.113543.6003.189642796.63084.16748.2599092903", "sopClass": { "system": "urn:ietf:rfc:3986", "code": "urn:oid:1.2.840.10008.5.1.4.1.1.2" } }] }] }),
        ];
        for e in &examples {
            let rt = e["resourceType"].as_str().unwrap();
            assert!(paths(e).is_empty(), "{rt}: {:?}", paths(e));
            let own = definition(rt).unwrap();
            for req in own.iter().filter(|el| el.min > 0) {
                let stem = req.name.trim_end_matches("[x]");
                let mut broken = e.clone();
                let keys: Vec<String> =
                    broken.as_object().unwrap().keys().filter(|k| k.starts_with(stem)).cloned().collect();
                for k in keys {
                    broken.as_object_mut().unwrap().remove(&k);
                }
                assert!(paths(&broken).iter().any(|(_, c)| *c == "required"), "{rt} without {}", req.name);
            }
        }
        let bad_time =
            json!({ "resourceType": "PractitionerRole", "availableTime": [{ "availableStartTime": "25:00:00" }] });
        assert_eq!(
            paths(&bad_time),
            vec![("PractitionerRole.availableTime[0].availableStartTime".to_string(), "value")]
        );
    }

    #[test]
    fn loinc_check_digits_and_icd10_forms_are_checked_wherever_a_coding_is() {
        // Check digits of codes in the LOINC table (8480-6 systolic, 8462-4 diastolic blood
        // pressure, 14771-0 fasting glucose, 4548-4 HbA1c, 2345-7 serum glucose, 85354-9 the
        // blood pressure panel).
        for c in ["8480-6", "8462-4", "14771-0", "4548-4", "2345-7", "85354-9", "718-7"] {
            assert!(loinc_ok(c), "{c}");
        }
        for c in ["8480-5", "8480", "-6", "12345678-9", "8a80-6", ""] {
            assert!(!loinc_ok(c), "{c}");
        }
        for c in ["I10", "E11.9", "I10.x00x002", "J44.1"] {
            assert!(icd10_ok(c), "{c}");
        }
        for c in ["I1", "i10", "I10.", "10I", "I10.x00x00200", "I10x"] {
            assert!(!icd10_ok(c), "{c}");
        }
        let o = json!({ "resourceType": "Observation", "status": "final",
            "code": { "coding": [{ "system": "http://loinc.org", "code": "8480-5" }] },
            "component": [{ "code": { "coding": [{ "system": "http://loinc.org", "code": "8462-4" }] }, "valueQuantity": { "value": 80 } }] });
        assert_eq!(paths(&o), vec![("Observation.code.coding[0].code".to_string(), "code-invalid")]);
        let c = json!({ "resourceType": "Condition", "subject": { "reference": "Patient/p1" },
            "code": { "coding": [{ "system": "http://hl7.org/fhir/sid/icd-10", "code": "hypertension" }] } });
        assert_eq!(paths(&c), vec![("Condition.code.coding[0].code".to_string(), "code-invalid")]);
    }

    #[test]
    fn deep_or_huge_documents_are_answered_with_bounded_issues() {
        let mut v = json!({ "url": "http://x", "valueString": "leaf" });
        for _ in 0..200 {
            v = json!({ "url": "http://x", "extension": [v] });
        }
        let p = json!({ "resourceType": "Patient", "extension": [v] });
        assert!(validate(&p, None).iter().any(|i| i.diagnostics.contains("deeply")));
        let many: Vec<Value> = (0..10_000).map(|_| json!(1)).collect();
        let p = json!({ "resourceType": "Patient", "name": [{ "given": many }] });
        assert_eq!(validate(&p, None).len(), MAX_ISSUES);
        let oo = operation_outcome(&validate(&p, None));
        assert_eq!(oo["resourceType"], "OperationOutcome");
        assert_eq!(oo["issue"][0]["expression"][0], "Patient.name[0].given[0]");
    }

    proptest! {
        #[test]
        fn any_json_is_answered(s in "\\PC{0,200}") {
            if let Ok(v) = serde_json::from_str::<Value>(&s) {
                let _ = validate(&v, None);
            }
            let p = json!({ "resourceType": "Patient", "name": [{ "text": s.clone() }], "gender": s.clone(), "birthDate": s });
            let _ = validate(&p, Some("Patient"));
        }
    }
}
