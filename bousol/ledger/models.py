"""Every model of the ledger, from one place (Alembic, the tests, the web layer).

Each domain keeps its tables in ``bousol/ledger/<domain>/models.py``; rules inside the
ledger import them from there, so that a domain depends only on what it names. This
module gathers them all under the single ``Base.metadata`` that Alembic compares.
"""

from bousol.ledger.access.models import (  # noqa: F401
    API_TOKEN_SCOPE_NAMES,
    API_TOKEN_SCOPES_CHECK,
    ApiToken,
    FirstPasswordCode,
    LoginAttempt,
    PasswordReset,
)
from bousol.ledger.association.models import (  # noqa: F401
    COLLEGE_CHECK,
    COLLEGE_LABELS,
    PARTNER_CATEGORY_LABELS,
    CollectiveMember,
    College,
    FecMapping,
    Motion,
    Partner,
    PartnerCategory,
    Vote,
)
from bousol.ledger.books.models import (  # noqa: F401
    BACKING_ACCOUNTS,
    FILIERE_LABELS,
    PARTY_PREFIX,
    PARTY_STATUSES,
    ROLE_PARTY_KIND,
    Account,
    AccountDay,
    Currency,
    Entry,
    EntryKind,
    Filiere,
    Party,
    PartyKind,
    Posting,
    SystemAccount,
    User,
)
from bousol.ledger.books.seal_models import PeriodSeal, PeriodSealAccount  # noqa: F401
from bousol.ledger.ccas.models import (  # noqa: F401
    VOUCHER_STATUSES,
    AidProgramme,
    Beneficiary,
    Voucher,
    VoucherBatch,
    VoucherRedemption,
)
from bousol.ledger.desk.models import (  # noqa: F401
    NOTE_DENOMINATIONS,
    CashClosing,
    CashClosingReopening,
    Desk,
    ExchangeApproval,
    IbanChange,
    Note,
    NoteMove,
    NoteMoveItem,
    NotePlace,
    NoteSeries,
    Payout,
    PayoutBatch,
    ReconversionRequest,
)
from bousol.ledger.kernel.actors import Role  # noqa: F401  (who acts: kernel/actors.py)
from bousol.ledger.kernel.models import (  # noqa: F401
    JOB_STATUSES,
    NAMING_CONVENTION,
    AuditHead,
    AuditRecord,
    Base,
    Counter,
    IdempotencyKey,
    Job,
    MailMessage,
    SettingChange,
    new_session_token,
    utcnow,
)
from bousol.ledger.merchants.models import (  # noqa: F401
    ApprovalDecision,
    PaymentRequest,
    Refund,
)
