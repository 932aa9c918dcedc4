"""The GraphQL Admin API schema the sandbox serves: a faithful subset of Shopify's 2026-01 Admin schema.

Type, field, argument and enum names are Shopify's (reference §3-§7, [SCHEMA]). The version changes the schema where
the reference records a difference (§3.3, §3.4): ≤ 2025-10 has ``compareQuantity``/``ignoreCompareQuantity`` and no
``changeFromQuantity``; 2026-01 has both (the old pair deprecated); 2026-04 and later (and ``unstable``) drop the old
pair. ``@idempotent(key:)`` is declared on FIELD (§3.7). Fields the sandbox does not serve are simply absent, so a
query for one fails validation as it would against a schema that lacks it.
"""

from __future__ import annotations

from functools import cache

from graphql import GraphQLSchema, build_schema

from .versions import Version

CONNECTIONS = (
    "Location",
    "Product",
    "ProductVariant",
    "InventoryItem",
    "InventoryLevel",
    "Order",
    "LineItem",
    "ShippingLine",
    "FulfillmentOrder",
    "FulfillmentOrderLineItem",
    "Fulfillment",
    "FulfillmentLineItem",
    "RefundLineItem",
    "OrderTransaction",
    "WebhookSubscription",
)

PAGE_ARGS = "first: Int, after: String, last: Int, before: String, reverse: Boolean = false"

COUNTRY_CODES = """
AC AD AE AF AG AI AL AM AN AO AR AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC
CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FO FR GA GB GD GE
GF GG GH GI GL GM GN GP GQ GR GS GT GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM
KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MK ML MM MN MO MQ MR MS MT MU MV MW MX MY MZ NA
NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PS PT PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ
SK SL SM SN SO SR SS ST SV SX SY SZ TA TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG
VN VU WF WS XK YE YT ZA ZM ZW ZZ
"""

CURRENCY_CODES = """
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD CAD CDF CHF CLP
CNY COP CRC CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HRK HTG HUF IDR
ILS INR IQD IRR ISK JEP JMD JOD JPY KES KGS KHR KID KMF KRW KWD KYD KZT LAK LBP LKR LRD LSL LTL LVL LYD MAD MDL MGA
MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB
RWF SAR SBD SCR SDG SEK SGD SHP SLL SOS SRD SSP STN SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS
VED VES VND VUV WST XAF XCD XOF XPF XXX YER ZAR ZMW
"""

WEBHOOK_TOPICS = """
APP_UNINSTALLED BULK_OPERATIONS_FINISH CUSTOMERS_CREATE CUSTOMERS_DELETE CUSTOMERS_UPDATE FULFILLMENTS_CREATE
FULFILLMENTS_UPDATE FULFILLMENT_EVENTS_CREATE FULFILLMENT_EVENTS_DELETE FULFILLMENT_ORDERS_CANCELLED
FULFILLMENT_ORDERS_HOLD_RELEASED FULFILLMENT_ORDERS_MERGED FULFILLMENT_ORDERS_MOVED
FULFILLMENT_ORDERS_ORDER_ROUTING_COMPLETE FULFILLMENT_ORDERS_PLACED_ON_HOLD FULFILLMENT_ORDERS_SPLIT
INVENTORY_ITEMS_CREATE INVENTORY_ITEMS_DELETE INVENTORY_ITEMS_UPDATE INVENTORY_LEVELS_CONNECT
INVENTORY_LEVELS_DISCONNECT INVENTORY_LEVELS_UPDATE LOCATIONS_ACTIVATE LOCATIONS_CREATE LOCATIONS_DEACTIVATE
LOCATIONS_DELETE LOCATIONS_UPDATE ORDERS_CANCELLED ORDERS_CREATE ORDERS_DELETE ORDERS_EDITED ORDERS_FULFILLED
ORDERS_PAID ORDERS_PARTIALLY_FULFILLED ORDERS_UPDATED ORDER_TRANSACTIONS_CREATE PRODUCTS_CREATE PRODUCTS_DELETE
PRODUCTS_UPDATE REFUNDS_CREATE RETURNS_APPROVE RETURNS_CANCEL RETURNS_CLOSE RETURNS_DECLINE RETURNS_PROCESS
RETURNS_REOPEN RETURNS_REQUEST RETURNS_UPDATE SHOP_UPDATE
"""

SDL = """
schema { query: QueryRoot mutation: Mutation }

"Makes a mutation idempotent: a retry with the same key returns the first result (reference §3.7)."
directive @idempotent(key: String!) on FIELD

scalar DateTime
scalar Decimal
scalar Money
scalar URL
scalar UnsignedInt64
scalar JSON
scalar HTML
scalar ARN

interface Node { id: ID! }

type QueryRoot {
  shop: Shop!
  node(id: ID!): Node
  nodes(ids: [ID!]!): [Node]!
  currentAppInstallation: AppInstallation!
  publicApiVersions: [ApiVersion!]!
  location(id: ID): Location
  locations(PAGE_ARGS, sortKey: LocationSortKeys = NAME, query: String, includeInactive: Boolean = false,
    includeLegacy: Boolean = false): LocationConnection!
  product(id: ID!): Product
  products(PAGE_ARGS, sortKey: ProductSortKeys = ID, query: String, savedSearchId: ID): ProductConnection!
  productsCount(query: String, limit: Int = 10000): Count
  productVariant(id: ID!): ProductVariant
  productVariants(PAGE_ARGS, sortKey: ProductVariantSortKeys = ID, query: String, savedSearchId: ID):
    ProductVariantConnection!
  productVariantsCount(query: String, limit: Int = 10000): Count
  inventoryItem(id: ID!): InventoryItem
  inventoryItems(PAGE_ARGS, query: String): InventoryItemConnection!
  inventoryLevel(id: ID!): InventoryLevel
  order(id: ID!): Order
  orders(PAGE_ARGS, sortKey: OrderSortKeys = PROCESSED_AT, query: String, savedSearchId: ID): OrderConnection!
  ordersCount(query: String, limit: Int = 10000): Count
  fulfillmentOrder(id: ID!): FulfillmentOrder
  fulfillment(id: ID!): Fulfillment
  refund(id: ID!): Refund
  job(id: ID!): Job
  webhookSubscription(id: ID!): WebhookSubscription
  webhookSubscriptions(PAGE_ARGS, sortKey: WebhookSubscriptionSortKeys = CREATED_AT,
    topics: [WebhookSubscriptionTopic!], format: WebhookSubscriptionFormat, uri: String, callbackUrl: URL,
    query: String): WebhookSubscriptionConnection!
}

type Mutation {
  orderCreate(order: OrderCreateOrderInput!, options: OrderCreateOptionsInput): OrderCreatePayload
  orderCancel(orderId: ID!, reason: OrderCancelReason!, restock: Boolean!, notifyCustomer: Boolean = false,
    staffNote: String, refundMethod: OrderCancelRefundMethodInput,
    refund: Boolean @deprecated(reason: "Use `refundMethod` instead.")): OrderCancelPayload
  orderUpdate(input: OrderInput!): OrderUpdatePayload
  tagsAdd(id: ID!, tags: [String!]!): TagsAddPayload
  tagsRemove(id: ID!, tags: [String!]!): TagsRemovePayload
  fulfillmentCreate(fulfillment: FulfillmentInput!, message: String): FulfillmentCreatePayload
  fulfillmentTrackingInfoUpdate(fulfillmentId: ID!, trackingInfoInput: FulfillmentTrackingInput!,
    notifyCustomer: Boolean): FulfillmentTrackingInfoUpdatePayload
  fulfillmentCancel(id: ID!): FulfillmentCancelPayload
  refundCreate(input: RefundInput!): RefundCreatePayload
  inventorySetQuantities(input: InventorySetQuantitiesInput!): InventorySetQuantitiesPayload
  inventoryAdjustQuantities(input: InventoryAdjustQuantitiesInput!): InventoryAdjustQuantitiesPayload
  inventoryActivate(inventoryItemId: ID!, locationId: ID!, available: Int, onHand: Int,
    stockAtLegacyLocation: Boolean = false): InventoryActivatePayload
  webhookSubscriptionCreate(topic: WebhookSubscriptionTopic!, webhookSubscription: WebhookSubscriptionInput!):
    WebhookSubscriptionCreatePayload
  webhookSubscriptionUpdate(id: ID!, webhookSubscription: WebhookSubscriptionInput!): WebhookSubscriptionUpdatePayload
  webhookSubscriptionDelete(id: ID!): WebhookSubscriptionDeletePayload
}

# --- shared objects ------------------------------------------------------------------------------------------

type PageInfo { hasNextPage: Boolean! hasPreviousPage: Boolean! startCursor: String endCursor: String }
type UserError { field: [String!] message: String! }
type Job { id: ID! done: Boolean! query: QueryRoot }
type Count { count: Int! precision: CountPrecision! }
enum CountPrecision { AT_LEAST EXACT }
type MoneyV2 { amount: Decimal! currencyCode: CurrencyCode! }
type MoneyBag { shopMoney: MoneyV2! presentmentMoney: MoneyV2! }
type Attribute { key: String! value: String }
type ApiVersion { handle: String! displayName: String! supported: Boolean! }
type AccessScope { handle: String! description: String! }
type App implements Node { id: ID! title: String! apiKey: String! handle: String }
type AppInstallation implements Node { id: ID! accessScopes: [AccessScope!]! app: App! launchUrl: URL! }

type MailingAddress implements Node {
  id: ID! address1: String address2: String city: String company: String country: String
  countryCodeV2: CountryCode firstName: String lastName: String name: String phone: String province: String
  provinceCode: String zip: String formattedArea: String
  formatted(withName: Boolean = false, withCompany: Boolean = true): [String!]!
}

type Shop implements Node {
  id: ID! name: String! email: String! contactEmail: String! myshopifyDomain: String! url: URL!
  currencyCode: CurrencyCode! ianaTimezone: String! timezoneAbbreviation: String! timezoneOffset: String!
  timezoneOffsetMinutes: Int! plan: ShopPlan! primaryDomain: Domain! createdAt: DateTime!
  enabledPresentmentCurrencies: [CurrencyCode!]!
}
type ShopPlan { displayName: String! partnerDevelopment: Boolean! shopifyPlus: Boolean! }
type Domain implements Node { id: ID! host: String! url: URL! sslEnabled: Boolean! }

type LocationAddress {
  address1: String address2: String city: String country: String countryCode: String province: String
  provinceCode: String zip: String phone: String formatted: [String!]!
}
type Location implements Node {
  id: ID! legacyResourceId: UnsignedInt64! name: String! isActive: Boolean! activatable: Boolean!
  deactivatable: Boolean! fulfillsOnlineOrders: Boolean! shipsInventory: Boolean! hasActiveInventory: Boolean!
  address: LocationAddress! createdAt: DateTime! updatedAt: DateTime!
  inventoryLevel(inventoryItemId: ID!): InventoryLevel
  inventoryLevels(PAGE_ARGS, query: String): InventoryLevelConnection!
}

type Product implements Node {
  id: ID! legacyResourceId: UnsignedInt64! title: String! handle: String! status: ProductStatus! vendor: String!
  productType: String! tags: [String!]! description: String! descriptionHtml: HTML! createdAt: DateTime!
  updatedAt: DateTime! totalInventory: Int! tracksInventory: Boolean! hasOnlyDefaultVariant: Boolean!
  variants(PAGE_ARGS, sortKey: ProductVariantSortKeys = POSITION): ProductVariantConnection!
  variantsCount: Count
}
type SelectedOption { name: String! value: String! }
type ProductVariant implements Node {
  id: ID! legacyResourceId: UnsignedInt64! title: String! displayName: String! sku: String barcode: String
  price: Money! compareAtPrice: Money inventoryPolicy: ProductVariantInventoryPolicy! inventoryQuantity: Int
  availableForSale: Boolean! sellableOnlineQuantity: Int! position: Int! taxable: Boolean! createdAt: DateTime!
  updatedAt: DateTime! product: Product! inventoryItem: InventoryItem! selectedOptions: [SelectedOption!]!
}
type InventoryItem implements Node {
  id: ID! legacyResourceId: UnsignedInt64! sku: String tracked: Boolean! requiresShipping: Boolean!
  duplicateSkuCount: Int! createdAt: DateTime! updatedAt: DateTime! unitCost: MoneyV2 locationsCount: Count
  inventoryLevel(locationId: ID!): InventoryLevel
  inventoryLevels(PAGE_ARGS, query: String): InventoryLevelConnection!
  variant: ProductVariant! @deprecated(reason: "Use `variants` instead.")
  variants(PAGE_ARGS): ProductVariantConnection!
}
type InventoryLevel implements Node {
  id: ID! item: InventoryItem! location: Location! canDeactivate: Boolean! deactivationAlert: String
  createdAt: DateTime! updatedAt: DateTime!
  quantities(names: [String!]!): [InventoryQuantity!]!
}
type InventoryQuantity implements Node { id: ID! name: String! quantity: Int! updatedAt: DateTime }
type InventoryAdjustmentGroup implements Node {
  id: ID! createdAt: DateTime! reason: String! referenceDocumentUri: String app: App
  changes(inventoryItemIds: [ID!], locationIds: [ID!], quantityNames: [String!]): [InventoryChange!]!
}
type InventoryChange {
  name: String! delta: Int! quantityAfterChange: Int ledgerDocumentUri: String item: InventoryItem
  location: Location
}

type Customer implements Node {
  id: ID! legacyResourceId: UnsignedInt64! email: String firstName: String lastName: String displayName: String!
  phone: String
}
type TaxLine { title: String! rate: Float ratePercentage: Float priceSet: MoneyBag! channelLiable: Boolean }
type ShippingLine {
  id: ID title: String! code: String source: String originalPriceSet: MoneyBag! discountedPriceSet: MoneyBag!
}
type OrderTransaction implements Node {
  id: ID! kind: OrderTransactionKind! status: OrderTransactionStatus! gateway: String amountSet: MoneyBag!
  createdAt: DateTime! processedAt: DateTime parentTransaction: OrderTransaction test: Boolean!
}

type Order implements Node {
  id: ID! legacyResourceId: UnsignedInt64! name: String! number: Int! email: String phone: String note: String
  createdAt: DateTime! updatedAt: DateTime! processedAt: DateTime! cancelledAt: DateTime closedAt: DateTime
  cancelReason: OrderCancelReason closed: Boolean! confirmed: Boolean! test: Boolean!
  displayFinancialStatus: OrderDisplayFinancialStatus displayFulfillmentStatus: OrderDisplayFulfillmentStatus!
  fullyPaid: Boolean! unpaid: Boolean! fulfillable: Boolean! restockable: Boolean!
  sourceName: String sourceIdentifier: String tags: [String!]! customAttributes: [Attribute!]!
  currencyCode: CurrencyCode! presentmentCurrencyCode: CurrencyCode! taxesIncluded: Boolean!
  totalPriceSet: MoneyBag! subtotalPriceSet: MoneyBag totalShippingPriceSet: MoneyBag! totalTaxSet: MoneyBag
  totalDiscountsSet: MoneyBag totalRefundedSet: MoneyBag! totalReceivedSet: MoneyBag! totalOutstandingSet: MoneyBag!
  currentTotalPriceSet: MoneyBag! currentSubtotalPriceSet: MoneyBag! subtotalLineItemsQuantity: Int!
  currentSubtotalLineItemsQuantity: Int!
  shippingAddress: MailingAddress billingAddress: MailingAddress customer: Customer
  paymentGatewayNames: [String!]! statusPageUrl: URL! taxLines: [TaxLine!]!
  lineItems(PAGE_ARGS): LineItemConnection!
  shippingLines(PAGE_ARGS, includeRemovals: Boolean = false): ShippingLineConnection!
  transactions(first: Int, capturable: Boolean, manuallyResolvable: Boolean): [OrderTransaction!]!
  fulfillmentOrders(PAGE_ARGS, query: String, displayable: Boolean = false): FulfillmentOrderConnection!
  fulfillments(first: Int): [Fulfillment!]!
  refunds(first: Int): [Refund!]!
}
type LineItem implements Node {
  id: ID! name: String! title: String! sku: String quantity: Int! currentQuantity: Int! unfulfilledQuantity: Int!
  refundableQuantity: Int! variantTitle: String vendor: String requiresShipping: Boolean! taxable: Boolean!
  isGiftCard: Boolean! variant: ProductVariant product: Product customAttributes: [Attribute!]!
  originalUnitPriceSet: MoneyBag! discountedUnitPriceSet: MoneyBag! originalTotalSet: MoneyBag!
  discountedTotalSet: MoneyBag! taxLines(first: Int): [TaxLine!]!
}

type FulfillmentOrderAssignedLocation {
  name: String! location: Location address1: String address2: String city: String countryCode: CountryCode!
  province: String zip: String phone: String
}
type FulfillmentOrderSupportedAction { action: FulfillmentOrderAction! externalUrl: URL }
type FulfillmentOrderDestination implements Node {
  id: ID! address1: String address2: String city: String company: String countryCode: CountryCode email: String
  firstName: String lastName: String phone: String province: String zip: String
}
type FulfillmentOrder implements Node {
  id: ID! status: FulfillmentOrderStatus! requestStatus: FulfillmentOrderRequestStatus! createdAt: DateTime!
  updatedAt: DateTime! fulfillAt: DateTime orderId: ID! orderName: String! order: Order!
  assignedLocation: FulfillmentOrderAssignedLocation! destination: FulfillmentOrderDestination
  supportedActions: [FulfillmentOrderSupportedAction!]!
  lineItems(PAGE_ARGS): FulfillmentOrderLineItemConnection!
  fulfillments(PAGE_ARGS): FulfillmentConnection!
}
type FulfillmentOrderLineItem implements Node {
  id: ID! totalQuantity: Int! remainingQuantity: Int! sku: String productTitle: String! variantTitle: String
  inventoryItemId: ID lineItem: LineItem! variant: ProductVariant
}
type FulfillmentTrackingInfo { company: String number: String url: URL }
type Fulfillment implements Node {
  id: ID! legacyResourceId: UnsignedInt64! name: String! status: FulfillmentStatus!
  displayStatus: FulfillmentDisplayStatus createdAt: DateTime! updatedAt: DateTime! totalQuantity: Int!
  requiresShipping: Boolean! location: Location order: Order!
  trackingInfo(first: Int): [FulfillmentTrackingInfo!]!
  fulfillmentLineItems(PAGE_ARGS): FulfillmentLineItemConnection!
  fulfillmentOrders(PAGE_ARGS): FulfillmentOrderConnection!
}
type FulfillmentLineItem implements Node {
  id: ID! quantity: Int lineItem: LineItem! originalTotalSet: MoneyBag! discountedTotalSet: MoneyBag!
}

type Refund implements Node {
  id: ID! legacyResourceId: UnsignedInt64! createdAt: DateTime updatedAt: DateTime! note: String order: Order!
  totalRefundedSet: MoneyBag!
  refundLineItems(PAGE_ARGS): RefundLineItemConnection!
  transactions(PAGE_ARGS): OrderTransactionConnection!
}
type RefundLineItem {
  id: ID lineItem: LineItem! quantity: Int! restockType: RefundLineItemRestockType! restocked: Boolean!
  location: Location priceSet: MoneyBag! subtotalSet: MoneyBag! totalTaxSet: MoneyBag!
}

type WebhookHttpEndpoint { callbackUrl: URL! }
type WebhookEventBridgeEndpoint { arn: ARN! }
type WebhookPubSubEndpoint { pubSubProject: String! pubSubTopic: String! }
union WebhookSubscriptionEndpoint = WebhookHttpEndpoint | WebhookEventBridgeEndpoint | WebhookPubSubEndpoint
type WebhookSubscription implements Node {
  id: ID! legacyResourceId: UnsignedInt64! topic: WebhookSubscriptionTopic! uri: String!
  format: WebhookSubscriptionFormat! includeFields: [String!]! metafieldNamespaces: [String!]! filter: String
  createdAt: DateTime! updatedAt: DateTime! apiVersion: ApiVersion! endpoint: WebhookSubscriptionEndpoint!
  callbackUrl: URL! @deprecated(reason: "Use `uri` instead.")
}

# --- payloads ------------------------------------------------------------------------------------------------

type OrderCreateUserError { code: OrderCreateUserErrorCode field: [String!] message: String! }
type OrderCreatePayload { order: Order userErrors: [OrderCreateUserError!]! }
type OrderCancelUserError { code: OrderCancelUserErrorCode field: [String!] message: String! }
type OrderCancelPayload {
  job: Job orderCancelUserErrors: [OrderCancelUserError!]!
  userErrors: [UserError!]! @deprecated(reason: "Use `orderCancelUserErrors` instead.")
}
type OrderUpdatePayload { order: Order userErrors: [UserError!]! }
type TagsAddPayload { node: Node userErrors: [UserError!]! }
type TagsRemovePayload { node: Node userErrors: [UserError!]! }
type FulfillmentCreatePayload { fulfillment: Fulfillment userErrors: [UserError!]! }
type FulfillmentTrackingInfoUpdatePayload { fulfillment: Fulfillment userErrors: [UserError!]! }
type FulfillmentCancelPayload { fulfillment: Fulfillment userErrors: [UserError!]! }
type RefundCreatePayload { refund: Refund order: Order userErrors: [UserError!]! }
type InventorySetQuantitiesUserError { code: InventorySetQuantitiesUserErrorCode field: [String!] message: String! }
type InventorySetQuantitiesPayload {
  inventoryAdjustmentGroup: InventoryAdjustmentGroup userErrors: [InventorySetQuantitiesUserError!]!
}
type InventoryAdjustQuantitiesUserError {
  code: InventoryAdjustQuantitiesUserErrorCode field: [String!] message: String!
}
type InventoryAdjustQuantitiesPayload {
  inventoryAdjustmentGroup: InventoryAdjustmentGroup userErrors: [InventoryAdjustQuantitiesUserError!]!
}
type InventoryActivatePayload { inventoryLevel: InventoryLevel userErrors: [UserError!]! }
type WebhookSubscriptionCreatePayload { webhookSubscription: WebhookSubscription userErrors: [UserError!]! }
type WebhookSubscriptionUpdatePayload { webhookSubscription: WebhookSubscription userErrors: [UserError!]! }
type WebhookSubscriptionDeletePayload { deletedWebhookSubscriptionId: ID userErrors: [UserError!]! }

# --- inputs --------------------------------------------------------------------------------------------------

input MoneyInput { amount: Decimal! currencyCode: CurrencyCode! }
input MoneyBagInput { shopMoney: MoneyInput! presentmentMoney: MoneyInput }
input AttributeInput { key: String! value: String! }
input MailingAddressInput {
  address1: String address2: String city: String company: String countryCode: CountryCode firstName: String
  lastName: String phone: String provinceCode: String zip: String
}
input TaxLineInput {
  channelLiable: Boolean priceSet: MoneyBagInput rate: Decimal! ratePercentage: Decimal title: String!
}
input MetafieldInput { namespace: String key: String value: String type: String }
input OrderCreateLineItemPropertyInput { name: String! value: String! }
input OrderCreateLineItemInput {
  variantId: ID productId: ID quantity: Int! priceSet: MoneyBagInput sku: String title: String variantTitle: String
  vendor: String requiresShipping: Boolean taxable: Boolean giftCard: Boolean fulfillmentService: String
  properties: [OrderCreateLineItemPropertyInput!] taxLines: [TaxLineInput!]
}
input OrderCreateShippingLineInput {
  title: String! priceSet: MoneyBagInput! code: String source: String taxLines: [TaxLineInput!]
}
input OrderCreateOrderTransactionInput {
  amountSet: MoneyBagInput! kind: OrderTransactionKind = SALE status: OrderTransactionStatus = SUCCESS
  gateway: String = "manual" authorizationCode: String processedAt: DateTime test: Boolean = false
  locationId: ID userId: ID deviceId: ID giftCardId: ID receiptJson: JSON
}
input OrderCreateAssociateCustomerAttributesInput { id: ID email: String }
input CustomerInput {
  id: ID email: String firstName: String lastName: String phone: String note: String tags: [String!]
  taxExempt: Boolean addresses: [MailingAddressInput!]
}
input OrderCreateCustomerInput {
  toAssociate: OrderCreateAssociateCustomerAttributesInput toUpsert: CustomerInput
}
input FulfillmentOriginAddressInput {
  address1: String address2: String city: String countryCode: String! provinceCode: String zip: String
}
input OrderCreateFulfillmentInput {
  locationId: ID! notifyCustomer: Boolean = false originAddress: FulfillmentOriginAddressInput
  shipmentStatus: FulfillmentEventStatus trackingCompany: String trackingNumber: String
}
input OrderCreateOrderInput {
  lineItems: [OrderCreateLineItemInput!] currency: CurrencyCode presentmentCurrency: CurrencyCode email: String
  phone: String customer: OrderCreateCustomerInput billingAddress: MailingAddressInput
  shippingAddress: MailingAddressInput shippingLines: [OrderCreateShippingLineInput!] taxLines: [TaxLineInput!]
  taxesIncluded: Boolean transactions: [OrderCreateOrderTransactionInput!]
  financialStatus: OrderCreateFinancialStatus fulfillmentStatus: OrderCreateFulfillmentStatus
  fulfillment: OrderCreateFulfillmentInput name: String note: String tags: [String!]
  customAttributes: [AttributeInput!] metafields: [MetafieldInput!] sourceName: String sourceIdentifier: String
  sourceUrl: URL processedAt: DateTime closedAt: DateTime poNumber: String referringSite: URL
  buyerAcceptsMarketing: Boolean test: Boolean userId: ID companyLocationId: ID
}
input OrderCreateOptionsInput {
  inventoryBehaviour: OrderCreateInputsInventoryBehavior = BYPASS sendReceipt: Boolean = false
  sendFulfillmentReceipt: Boolean = false
}
input StoreCreditRefundInput { expiresAt: DateTime }
input OrderCancelRefundMethodInput {
  originalPaymentMethodsRefund: Boolean storeCreditRefund: StoreCreditRefundInput
}
input OrderInput {
  id: ID! email: String note: String phone: String poNumber: String tags: [String!]
  customAttributes: [AttributeInput!] shippingAddress: MailingAddressInput
}
input FulfillmentOrderLineItemInput { id: ID! quantity: Int! }
input FulfillmentOrderLineItemsInput {
  fulfillmentOrderId: ID! fulfillmentOrderLineItems: [FulfillmentOrderLineItemInput!]
}
input FulfillmentTrackingInput { company: String number: String numbers: [String!] url: URL urls: [URL!] }
input FulfillmentInput {
  lineItemsByFulfillmentOrder: [FulfillmentOrderLineItemsInput!]! notifyCustomer: Boolean = false
  originAddress: FulfillmentOriginAddressInput trackingInfo: FulfillmentTrackingInput
}
input RefundLineItemInput {
  lineItemId: ID! quantity: Int! restockType: RefundLineItemRestockType = RETURN locationId: ID
}
input ShippingRefundInput { amount: Money fullRefund: Boolean }
input OrderTransactionInput {
  orderId: ID! amount: Money! gateway: String! kind: OrderTransactionKind! parentId: ID
}
input RefundInput {
  orderId: ID! note: String notify: Boolean currency: CurrencyCode refundLineItems: [RefundLineItemInput!]
  shipping: ShippingRefundInput transactions: [OrderTransactionInput!] allowOverRefunding: Boolean
  processedAt: DateTime
}
input InventoryQuantityInput {
  inventoryItemId: ID! locationId: ID! quantity: Int!
  CHANGE_FROM_QUANTITY_FIELD
  COMPARE_QUANTITY_FIELD
}
input InventorySetQuantitiesInput {
  name: String! reason: String! referenceDocumentUri: String quantities: [InventoryQuantityInput!]!
  IGNORE_COMPARE_QUANTITY_FIELD
}
input InventoryChangeInput {
  delta: Int! inventoryItemId: ID! locationId: ID! ledgerDocumentUri: String
  CHANGE_FROM_QUANTITY_FIELD
}
input InventoryAdjustQuantitiesInput {
  name: String! reason: String! referenceDocumentUri: String changes: [InventoryChangeInput!]!
}
input WebhookSubscriptionInput {
  uri: String callbackUrl: URL @deprecated(reason: "Use `uri` instead.") format: WebhookSubscriptionFormat
  includeFields: [String!] metafieldNamespaces: [String!] filter: String
}

# --- enums ---------------------------------------------------------------------------------------------------

enum CountryCode { COUNTRY_CODES }
enum CurrencyCode { CURRENCY_CODES }
enum WebhookSubscriptionTopic { WEBHOOK_TOPICS }
enum WebhookSubscriptionFormat { JSON XML }
enum WebhookSubscriptionSortKeys { CREATED_AT ID RELEVANCE }
enum LocationSortKeys { ID NAME RELEVANCE }
enum ProductSortKeys { CREATED_AT ID INVENTORY_TOTAL PRODUCT_TYPE PUBLISHED_AT RELEVANCE TITLE UPDATED_AT VENDOR }
enum ProductVariantSortKeys {
  FULL_TITLE ID INVENTORY_LEVELS_AVAILABLE INVENTORY_MANAGEMENT INVENTORY_POLICY LOCATION NAME POPULAR POSITION
  RELEVANCE SKU TITLE
}
enum OrderSortKeys {
  CREATED_AT CUSTOMER_NAME DESTINATION FINANCIAL_STATUS FULFILLMENT_STATUS ID ORDER_NUMBER PO_NUMBER PROCESSED_AT
  RELEVANCE TOTAL_ITEMS_QUANTITY TOTAL_PRICE UPDATED_AT
}
enum ProductStatus { ACTIVE ARCHIVED DRAFT }
enum ProductVariantInventoryPolicy { CONTINUE DENY }
enum OrderCancelReason { CUSTOMER DECLINED FRAUD INVENTORY OTHER STAFF }
enum OrderDisplayFinancialStatus {
  AUTHORIZED EXPIRED PAID PARTIALLY_PAID PARTIALLY_REFUNDED PENDING REFUNDED VOIDED
}
enum OrderDisplayFulfillmentStatus {
  FULFILLED IN_PROGRESS ON_HOLD OPEN PARTIALLY_FULFILLED PENDING_FULFILLMENT REQUEST_DECLINED RESTOCKED SCHEDULED
  UNFULFILLED
}
enum OrderCreateFinancialStatus {
  AUTHORIZED EXPIRED PAID PARTIALLY_PAID PARTIALLY_REFUNDED PENDING REFUNDED VOIDED
}
enum OrderCreateFulfillmentStatus { FULFILLED PARTIAL RESTOCKED }
enum OrderCreateInputsInventoryBehavior { BYPASS DECREMENT_IGNORING_POLICY DECREMENT_OBEYING_POLICY }
enum OrderCreateUserErrorCode {
  FULFILLMENT_SERVICE_INVALID INVALID INVENTORY_CLAIM_FAILED PROCESSED_AT_INVALID REDUNDANT_CUSTOMER_FIELDS
  SHOP_DORMANT TAX_LINE_RATE_MISSING
}
enum OrderCancelUserErrorCode { INTERNAL_ERROR INVALID NOT_FOUND NO_REFUND_PERMISSION }
enum OrderTransactionKind { AUTHORIZATION CAPTURE CHANGE EMV_AUTHORIZATION REFUND SALE SUGGESTED_REFUND VOID }
enum OrderTransactionStatus { AWAITING_RESPONSE ERROR FAILURE PENDING SUCCESS UNKNOWN }
enum FulfillmentOrderStatus { CANCELLED CLOSED INCOMPLETE IN_PROGRESS ON_HOLD OPEN SCHEDULED }
enum FulfillmentOrderRequestStatus {
  ACCEPTED CANCELLATION_ACCEPTED CANCELLATION_REJECTED CANCELLATION_REQUESTED CLOSED REJECTED SUBMITTED UNSUBMITTED
}
enum FulfillmentOrderAction {
  CANCEL_FULFILLMENT_ORDER CREATE_FULFILLMENT EXTERNAL HOLD MARK_AS_OPEN MERGE MOVE RELEASE_HOLD
  REQUEST_CANCELLATION REQUEST_FULFILLMENT SPLIT
}
enum FulfillmentStatus { CANCELLED ERROR FAILURE OPEN PENDING SUCCESS }
enum FulfillmentDisplayStatus {
  ATTEMPTED_DELIVERY CANCELED CONFIRMED DELIVERED FAILURE FULFILLED IN_TRANSIT LABEL_PRINTED LABEL_PURCHASED
  LABEL_VOIDED MARKED_AS_FULFILLED NOT_DELIVERED OUT_FOR_DELIVERY PICKED_UP READY_FOR_PICKUP SUBMITTED
}
enum FulfillmentEventStatus {
  ATTEMPTED_DELIVERY CARRIER_PICKED_UP CONFIRMED DELAYED DELIVERED FAILURE IN_TRANSIT LABEL_PRINTED
  LABEL_PURCHASED OUT_FOR_DELIVERY READY_FOR_PICKUP
}
enum RefundLineItemRestockType { CANCEL LEGACY_RESTOCK NO_RESTOCK RETURN }
enum InventorySetQuantitiesUserErrorCode {
  CHANGE_FROM_QUANTITY_STALE COMPARE_QUANTITY_REQUIRED COMPARE_QUANTITY_STALE IDEMPOTENCY_CONCURRENT_REQUEST
  IDEMPOTENCY_KEY_PARAMETER_MISMATCH IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED INVALID_INVENTORY_ITEM INVALID_LOCATION
  INVALID_NAME INVALID_QUANTITY_NEGATIVE INVALID_QUANTITY_TOO_HIGH INVALID_QUANTITY_TOO_LOW INVALID_REASON
  INVALID_REFERENCE_DOCUMENT ITEM_NOT_STOCKED_AT_LOCATION NON_MUTABLE_INVENTORY_ITEM
  NO_DUPLICATE_INVENTORY_ITEM_ID_GROUP_ID_PAIR
}
enum InventoryAdjustQuantitiesUserErrorCode {
  ADJUST_QUANTITIES_FAILED CHANGE_FROM_QUANTITY_STALE IDEMPOTENCY_CONCURRENT_REQUEST
  IDEMPOTENCY_KEY_PARAMETER_MISMATCH INTERNAL_LEDGER_DOCUMENT INVALID_AVAILABLE_DOCUMENT INVALID_INVENTORY_ITEM
  INVALID_LEDGER_DOCUMENT INVALID_LOCATION INVALID_QUANTITY_DOCUMENT INVALID_QUANTITY_NAME
  INVALID_QUANTITY_TOO_HIGH INVALID_QUANTITY_TOO_LOW INVALID_REASON INVALID_REFERENCE_DOCUMENT
  ITEM_NOT_STOCKED_AT_LOCATION MAX_ONE_LEDGER_DOCUMENT NON_MUTABLE_INVENTORY_ITEM SERVICE_UNAVAILABLE
}
"""


def _connection(name: str) -> str:
    return (
        f"type {name}Connection {{ edges: [{name}Edge!]! nodes: [{name}!]! pageInfo: PageInfo! }}\n"
        f"type {name}Edge {{ cursor: String! node: {name}! }}\n"
    )


def sdl_for(version: Version) -> str:
    """The SDL served to ``version`` (only the compare-and-swap fields differ, §3.3)."""
    change_from = "changeFromQuantity: Int" if version.at_least(2026, 1) else ""
    if version.at_least(2026, 4):
        compare = ignore = ""
    elif version.at_least(2026, 1):
        compare = 'compareQuantity: Int @deprecated(reason: "Use `changeFromQuantity` instead.")'
        ignore = 'ignoreCompareQuantity: Boolean = false @deprecated(reason: "Use `changeFromQuantity: null`.")'
    else:
        compare = "compareQuantity: Int"
        ignore = "ignoreCompareQuantity: Boolean = false"
    text = (
        SDL.replace("PAGE_ARGS", PAGE_ARGS)
        .replace("IGNORE_COMPARE_QUANTITY_FIELD", ignore)
        .replace("CHANGE_FROM_QUANTITY_FIELD", change_from)
        .replace("COMPARE_QUANTITY_FIELD", compare)
        .replace("COUNTRY_CODES", " ".join(COUNTRY_CODES.split()))
        .replace("CURRENCY_CODES", " ".join(CURRENCY_CODES.split()))
        .replace("WEBHOOK_TOPICS", " ".join(WEBHOOK_TOPICS.split()))
    )
    return text + "".join(_connection(name) for name in CONNECTIONS)


@cache
def schema_for_generation(generation: str) -> GraphQLSchema:
    """One built schema per schema generation (``versions.Version.generation``)."""
    schema = build_schema(sdl_for(Version.of_generation(generation)))
    _install_type_resolvers(schema)
    return schema


def schema_for(version: Version) -> GraphQLSchema:
    return schema_for_generation(version.generation)


def _install_type_resolvers(schema: GraphQLSchema) -> None:
    """Abstract types resolve from the view's ``typename`` attribute (views.py)."""
    from graphql import GraphQLInterfaceType, GraphQLUnionType

    def resolve(value: object, *_: object) -> str | None:
        name = value.get("typename") if isinstance(value, dict) else getattr(value, "typename", None)
        return name if isinstance(name, str) else None

    for gql_type in schema.type_map.values():
        if isinstance(gql_type, GraphQLInterfaceType | GraphQLUnionType):
            gql_type.resolve_type = resolve
