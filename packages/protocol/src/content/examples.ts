import type { AnswerContentByType, AnswerType } from './answers.js';
import type { AuthorityParty, RequestHeader } from './common.js';
import type { RequestContentByType, RequestType } from './requests.js';

// Every name, reference and number below is invented. The authority
// addresses follow the examples of the architecture document.

const REQUESTING: AuthorityParty = {
  address: 'ng-moj@wacap',
  name: 'Central Authority (fictitious example, requesting side)',
  country: 'NG',
};
const REQUESTED: AuthorityParty = {
  address: 'gh-ag@wacap',
  name: 'Central Authority (fictitious example, requested side)',
  country: 'GH',
};

/** Envelope id of the fictitious request the example answers reply to. */
export const EXAMPLE_REQUEST_ENVELOPE_ID = 'EXAMPLE0envelope0id00A';

function header(
  caseReference: string,
  assistanceRequested: string[],
  untocArticle: string,
): RequestHeader {
  return {
    requestingAuthority: { ...REQUESTING },
    requestedAuthority: { ...REQUESTED },
    caseReference,
    legalBasis: [
      {
        instrument: 'untoc',
        article: untocArticle,
        title: 'United Nations Convention against Transnational Organized Crime',
      },
      { instrument: 'reciprocity' },
    ],
    summaryOfFacts:
      'FICTITIOUS EXAMPLE. Between March and November 2024 an organised group led by John EXAMPLE ' +
      'imported counterfeit medicines through the port of Exampleton and sold them to pharmacies. ' +
      'The proceeds, about USD 1.2 million, were transferred through accounts of Acme Fictitious ' +
      'Trading Ltd held with Example Bank plc.',
    offences: [
      {
        description:
          'Participation in an organised criminal group that imported and sold counterfeit medicines.',
        legalProvisions: [
          'Fictitious Criminal Code, art. 97',
          'Fictitious Food and Drugs Act, s. 12',
        ],
        maximumPenalty: "14 years' imprisonment",
        dateOfCommission: '2024-03-01',
        dateOfCommissionEnd: '2024-11-30',
        placeOfCommission: 'Exampleton',
      },
      {
        description: 'Laundering of the proceeds through company bank accounts.',
        legalProvisions: ['Fictitious Money Laundering Act, s. 15'],
        maximumPenalty: "10 years' imprisonment and a fine",
      },
    ],
    persons: [
      {
        role: 'suspect',
        name: 'John EXAMPLE',
        aliases: ['Johnny SPECIMEN'],
        dateOfBirth: '1980-01-01',
        nationalities: ['NG'],
        identityDocuments: [{ type: 'passport', number: 'X0000000', issuingCountry: 'NG' }],
      },
      { role: 'account-holder', name: 'Acme Fictitious Trading Ltd' },
    ],
    assistanceRequested,
    urgency: 'normal',
    confidentiality: 'confidential',
    handlingCode: 'restricted',
    language: 'en',
  };
}

function mla(): RequestContentByType['mla'] {
  return {
    kind: 'request',
    requestType: 'mla',
    header: header(
      'EX-MLA-2025-0001',
      ['Obtain bank records of Acme Fictitious Trading Ltd', 'Hear one witness'],
      '18',
    ),
    mla: {
      measures: [
        {
          type: 'provide-documents-records',
          description:
            'Certified copies of account opening documents and statements of the account listed.',
        },
        {
          type: 'take-testimony',
          description: 'Hear the witness on the deliveries received from the suspect.',
          attachments: [{ attachment: 0 }],
        },
      ],
      accounts: [
        {
          bankName: 'Example Bank plc',
          accountHolder: 'Acme Fictitious Trading Ltd',
          accountNumber: '0000000000',
          swiftBic: 'EXAMGHAC',
          periodFrom: '2024-01-01',
          periodTo: '2024-12-31',
        },
      ],
      personsToBeHeard: [
        {
          name: 'Jane SPECIMEN',
          capacity: 'witness',
          questions: [
            'Did you receive deliveries of medicines from John EXAMPLE in 2024?',
            'How were they paid for?',
          ],
          language: 'en',
        },
      ],
      procedures: [
        {
          type: 'certification-of-records',
          description:
            'Bank records should be certified by the bank as true copies so they are admissible.',
        },
      ],
      confidentialityExplanation:
        'The suspect is not aware of the investigation; disclosure could lead to flight.',
    },
  };
}

function extradition(): RequestContentByType['extradition'] {
  return {
    kind: 'request',
    requestType: 'extradition',
    header: {
      ...header('EX-EXT-2025-0002', ['Arrest and surrender John EXAMPLE for prosecution'], '16'),
      confidentiality: 'standard',
    },
    extradition: {
      personSought: {
        fullName: 'John EXAMPLE',
        aliases: ['Johnny SPECIMEN'],
        dateOfBirth: '1980-01-01',
        placeOfBirth: 'Exampleton',
        nationalities: ['NG'],
        physicalDescription: 'About 1.80 m, slim build, scar on the left hand.',
        photo: { attachment: 1 },
        location: {
          certainty: 'probable',
          description: 'Believed to be living in the Example district of the capital.',
        },
      },
      purpose: 'prosecution',
      warrantOrJudgment: {
        kind: 'arrest-warrant',
        issuingAuthority: 'Fictitious High Court, Exampleton Division',
        date: '2025-01-15',
        reference: 'EX-WARRANT-0001',
        attachment: { attachment: 0 },
      },
      penalty: { maximumPenalty: "14 years' imprisonment" },
      limitationPeriod: {
        provision: 'Fictitious Criminal Procedure Code, s. 40',
        statement: 'No limitation period applies to offences punishable by more than 10 years.',
      },
      provisionalArrestRequested: true,
      assurances: [
        {
          type: 'fair-trial',
          text: 'The person will be tried by an independent court with legal representation.',
        },
      ],
      specialtyRuleAcknowledged: true,
    },
  };
}

function transfer(): RequestContentByType['transfer-of-sentenced-persons'] {
  return {
    kind: 'request',
    requestType: 'transfer-of-sentenced-persons',
    header: {
      ...header(
        'EX-TSP-2025-0003',
        ['Transfer Jane SPECIMEN to serve the rest of her sentence'],
        '17',
      ),
      persons: [{ role: 'convicted', name: 'Jane SPECIMEN' }],
      confidentiality: 'standard',
      handlingCode: 'none',
    },
    transfer: {
      sentencedPerson: {
        name: 'Jane SPECIMEN',
        dateOfBirth: '1990-06-15',
        nationalities: ['GH'],
        placeOfDetention: 'Fictitious Central Prison, Exampleton',
      },
      judgment: {
        court: 'Fictitious Court of Appeal',
        date: '2024-05-20',
        reference: 'EX-JUDG-0042',
        final: true,
        attachment: { attachment: 0 },
      },
      sentence: {
        lengthDays: 2920,
        startDate: '2023-09-01',
        timeServedDays: 600,
        remainingDays: 2320,
      },
      consent: { given: true, date: '2025-02-10', attachment: { attachment: 1 } },
      administeringState: 'GH',
      reasons:
        'The sentenced person is a national of the administering state, where her family lives; social rehabilitation.',
    },
  };
}

function confiscation(): RequestContentByType['confiscation'] {
  return {
    kind: 'request',
    requestType: 'confiscation',
    header: header(
      'EX-CONF-2025-0004',
      ['Enforce the confiscation order against the assets listed'],
      '13',
    ),
    confiscation: {
      orderType: 'confiscation',
      assets: [
        {
          type: 'bank-account',
          description: 'Current account of Acme Fictitious Trading Ltd.',
          country: 'GB',
          estimatedValue: { amount: '125000.50', currency: 'USD' },
          account: {
            bankName: 'Example Bank plc',
            accountHolder: 'Acme Fictitious Trading Ltd',
            iban: 'GB82WEST12345698765432',
            swiftBic: 'WESTGB2L',
          },
        },
        {
          type: 'real-estate',
          description: 'Warehouse, plot 12, Example Industrial Estate.',
          location: 'Exampleton land registry, title EX-000',
          country: 'GH',
          estimatedValue: { amount: '300000', currency: 'GHS' },
        },
      ],
      order: {
        issuingCourt: 'Fictitious High Court, Exampleton Division',
        date: '2025-03-03',
        reference: 'EX-CONF-ORDER-0001',
        final: true,
        attachment: { attachment: 0 },
      },
      linkToOffence:
        'The account received the proceeds of the sales; the warehouse was bought with them in 2024.',
      thirdPartyInterests: 'None known.',
      assetSharingProposal:
        'Return of the net proceeds to the requesting state after deduction of reasonable expenses.',
    },
  };
}

function answerBase(from: AuthorityParty, to: AuthorityParty) {
  return {
    kind: 'answer' as const,
    inReplyTo: {
      envelopeId: EXAMPLE_REQUEST_ENVELOPE_ID,
      caseReference: 'EX-MLA-2025-0001',
      requestedCaseReference: 'EX-RQD-2025-0100',
    },
    from: { ...from },
    to: { ...to },
    language: 'en',
  };
}

function answer<T extends AnswerType>(type: T): AnswerContentByType[T];
function answer(type: AnswerType): AnswerContentByType[AnswerType] {
  const reply = answerBase(REQUESTED, REQUESTING);
  switch (type) {
    case 'acknowledgement':
      return {
        ...reply,
        answerType: 'acknowledgement',
        acknowledgement: {
          receivedOn: '2025-04-02',
          requestedCaseReference: 'EX-RQD-2025-0100',
          assignedOfficer: {
            name: 'Officer EXAMPLE',
            function: 'State Attorney',
            contact: 'officer@example.invalid',
          },
        },
      };
    case 'request-additional-information':
      return {
        ...reply,
        answerType: 'request-additional-information',
        additionalInformation: {
          items: [
            'Please state the account number of the second account mentioned in the summary of facts.',
          ],
          deadline: '2025-06-30',
        },
      };
    case 'partial-execution':
      return {
        ...reply,
        answerType: 'partial-execution',
        execution: {
          results: [
            {
              description: 'Bank records for 2024 obtained and certified.',
              executedOn: '2025-05-12',
              attachments: [{ attachment: 0 }],
            },
          ],
          remaining: [
            {
              description: 'Hearing of the witness.',
              reason: 'The witness could not be located; enquiries continue.',
            },
          ],
        },
      };
    case 'full-execution':
      return {
        ...reply,
        answerType: 'full-execution',
        execution: {
          results: [
            {
              description: 'Bank records for 2024 obtained and certified.',
              executedOn: '2025-05-12',
              attachments: [{ attachment: 0 }],
            },
            {
              description: 'Witness heard; record of the hearing attached.',
              executedOn: '2025-05-20',
              attachments: [{ attachment: 1 }],
            },
          ],
        },
      };
    case 'refusal':
      return {
        ...reply,
        answerType: 'refusal',
        refusal: {
          grounds: [
            {
              ground: 'ne-bis-in-idem',
              explanation:
                'The person was finally acquitted of the same conduct by a court of the requested state.',
              legalProvision: 'Fictitious Constitution, art. 19(5)',
            },
          ],
          consultationHeld: true,
        },
      };
    case 'withdrawal':
      return {
        ...answerBase(REQUESTING, REQUESTED),
        answerType: 'withdrawal',
        withdrawal: { reason: 'The proceedings were discontinued after the death of the suspect.' },
      };
  }
}

/**
 * A realistic, valid and entirely fictitious request of the given type, for
 * tests, test vectors and demos. A fresh object on every call. Attachment
 * references point to indexes 0 and 1: build the dossier with at least two
 * attachments (see `referencedAttachments`).
 */
export function exampleRequest<T extends RequestType>(requestType: T): RequestContentByType[T];
export function exampleRequest(requestType: RequestType): RequestContentByType[RequestType] {
  switch (requestType) {
    case 'mla':
      return mla();
    case 'extradition':
      return extradition();
    case 'transfer-of-sentenced-persons':
      return transfer();
    case 'confiscation':
      return confiscation();
  }
}

/** A valid, fictitious answer of the given type to the example MLA request. */
export function exampleAnswer<T extends AnswerType>(answerType: T): AnswerContentByType[T] {
  return answer(answerType);
}
