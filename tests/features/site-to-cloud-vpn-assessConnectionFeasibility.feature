Feature: CAMARA Site-to-Cloud VPN API, v0.1 - Operation assessConnectionFeasibility
  # Implementation indications:
  #   The assessment creates and reserves nothing; one option per SLA tier the network can carry.
  # Testing assets:
  #   A valid AssessmentRequest on the target's network (S2CVPN_FEATURES_ASSESSMENT_BODY) and an
  #   IPv4 address the network does not serve (S2CVPN_FEATURES_UNSERVED_ADDRESS).
  # References to OAS spec schemas refer to openapi.yaml.

  Background: Common assessConnectionFeasibility setup
    Given an environment at "apiRoot"
    And the resource "/site-to-cloud-vpn/v0.1/assessment"
    And the header "Content-Type" is set to "application/json"
    And the header "Authorization" is set to a valid access token
    And the header "x-correlator" complies with the schema at "#/components/schemas/XCorrelator"
    And the request body is set by default to a request body compliant with the schema at "/components/schemas/AssessmentRequest"

  @assessConnectionFeasibility_01_generic_success_scenario
  Scenario: Common validations for any success scenario
    When the request "assessConnectionFeasibility" is sent
    Then the response status code is 200
    And the response header "Content-Type" is "application/json"
    And the response header "x-correlator" has same value as the request header "x-correlator"
    And the response body complies with the OAS schema at "#/components/schemas/AssessmentResult"
    And the response property "$.feasible" is true
    And the response property "$.options[0].rent.amount" exists

  @assessConnectionFeasibility_02_single_tier
  Scenario: Only the asked tier is assessed when sla is given
    Given the request body property "$.sla" is set to "AA"
    When the request "assessConnectionFeasibility" is sent
    Then the response status code is 200
    And the response property "$.options" has 1 items
    And the response property "$.options[0].sla" is "AA"

  @assessConnectionFeasibility_03_infeasible_bandwidth
  Scenario: A bandwidth the network cannot carry is infeasible, with a context code
    Given the request body property "$.guaranteeBandwidth" is set to 900000
    When the request "assessConnectionFeasibility" is sent
    Then the response status code is 200
    And the response body complies with the OAS schema at "#/components/schemas/AssessmentResult"
    And the response property "$.feasible" is false
    And the response property "$.options" has 0 items
    And the response property "$.contextCode" exists

  @assessConnectionFeasibility_400.1_schema_not_compliant
  Scenario: Invalid Argument. Generic Syntax Exception
    Given the request body property "$.colour" is set to "red"
    When the request "assessConnectionFeasibility" is sent
    Then the response status code is 400
    And the response header "x-correlator" has same value as the request header "x-correlator"
    And the response header "Content-Type" is "application/json"
    And the response property "$.status" is 400
    And the response property "$.code" is "INVALID_ARGUMENT"
    And the response property "$.message" contains a user friendly text

  @assessConnectionFeasibility_400.2_no_request_body
  Scenario: Missing request body
    Given the request body is not included
    When the request "assessConnectionFeasibility" is sent
    Then the response status code is 400
    And the response property "$.status" is 400
    And the response property "$.code" is "INVALID_ARGUMENT"
    And the response property "$.message" contains a user friendly text

  @assessConnectionFeasibility_400.3_empty_request_body
  Scenario: Empty object as request body
    Given the request body is set to {}
    When the request "assessConnectionFeasibility" is sent
    Then the response status code is 400
    And the response property "$.status" is 400
    And the response property "$.code" is "INVALID_ARGUMENT"
    And the response property "$.message" contains a user friendly text

  @assessConnectionFeasibility_400.4_out_of_range_bandwidth
  Scenario Outline: Error 400 due to guaranteeBandwidth value out of allowed range
    Given the request body property "$.guaranteeBandwidth" is set to <bandwidth>
    When the request "assessConnectionFeasibility" is sent
    Then the response status code is 400
    And the response property "$.status" is 400
    And the response property "$.code" is "OUT_OF_RANGE"
    And the response property "$.message" contains a user friendly text

    Examples:
      | bandwidth |
      | 0         |
      | 1000001   |

  @assessConnectionFeasibility_400.5_invalid_duration_unit
  Scenario: Error 400 due to duration unit not matching allowed enum
    Given the request body property "$.duration" is set to {"value": 1, "unit": "weeks"}
    When the request "assessConnectionFeasibility" is sent
    Then the response status code is 400
    And the response property "$.code" is "INVALID_ARGUMENT"

  @assessConnectionFeasibility_400.6_wrong_address_family
  Scenario: An IPv6 address where IPv4 is expected
    Given the request body property "$.customerEdge.primaryIpAddress.ipv4Address" is set to "2001:db8::1"
    When the request "assessConnectionFeasibility" is sent
    Then the response status code is 400
    And the response property "$.code" is "INVALID_ARGUMENT"

  @assessConnectionFeasibility_400.7_protected_without_secondary_addresses
  Scenario: isProtected without secondary addresses on both edges
    Given the request body property "$.isProtected" is set to true
    When the request "assessConnectionFeasibility" is sent
    Then the response status code is 400
    And the response property "$.code" is "INVALID_ARGUMENT"

  @assessConnectionFeasibility_400.8_invalid_x-correlator
  Scenario: Invalid x-correlator header
    Given the header "x-correlator" does not comply with the schema at "#/components/schemas/XCorrelator"
    When the request "assessConnectionFeasibility" is sent
    Then the response status code is 400
    And the response header "x-correlator" is not set to the invalid value
    And the response property "$.status" is 400
    And the response property "$.code" is "INVALID_ARGUMENT"

  @assessConnectionFeasibility_401.1_no_authorization_header
  Scenario: Error response for no header "Authorization"
    Given the header "Authorization" is not sent
    When the request "assessConnectionFeasibility" is sent
    Then the response status code is 401
    And the response header "x-correlator" has same value as the request header "x-correlator"
    And the response property "$.status" is 401
    And the response property "$.code" is "UNAUTHENTICATED"
    And the response property "$.message" contains a user friendly text

  @assessConnectionFeasibility_401.2_expired_access_token
  Scenario: Error response for expired access token
    Given the header "Authorization" is set to an expired access token
    When the request "assessConnectionFeasibility" is sent
    Then the response status code is 401
    And the response property "$.status" is 401
    And the response property "$.code" is "UNAUTHENTICATED"

  @assessConnectionFeasibility_401.3_invalid_access_token
  Scenario: Error response for invalid access token
    Given the header "Authorization" is set to an invalid access token
    When the request "assessConnectionFeasibility" is sent
    Then the response status code is 401
    And the response property "$.status" is 401
    And the response property "$.code" is "UNAUTHENTICATED"

  @assessConnectionFeasibility_403.1_missing_access_token_scope
  Scenario: Missing access token scope
    Given the header "Authorization" is set to a valid access token which does not include scope "site-to-cloud-vpn:assessment:assess"
    When the request "assessConnectionFeasibility" is sent
    Then the response status code is 403
    And the response property "$.status" is 403
    And the response property "$.code" is "PERMISSION_DENIED"
    And the response property "$.message" contains a user friendly text

  @assessConnectionFeasibility_415.1_unsupported_media_type
  Scenario: The body is not sent as JSON
    Given the header "Content-Type" is set to "text/plain"
    When the request "assessConnectionFeasibility" is sent
    Then the response status code is 415
    And the response property "$.status" is 415
    And the response property "$.code" is "UNSUPPORTED_MEDIA_TYPE"

  @assessConnectionFeasibility_422.1_location_not_served
  Scenario: The customer edge is not attached to this provider's network
    Given the request body property "$.customerEdge.primaryIpAddress.ipv4Address" is set to an address the network does not serve
    When the request "assessConnectionFeasibility" is sent
    Then the response status code is 422
    And the response header "x-correlator" has same value as the request header "x-correlator"
    And the response property "$.status" is 422
    And the response property "$.code" is "SITE_TO_CLOUD_VPN.LOCATION_NOT_SERVED"
    And the response property "$.message" contains a user friendly text
