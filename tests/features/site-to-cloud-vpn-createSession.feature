Feature: CAMARA Site-to-Cloud VPN API, v0.1 - Operation createSession
  # Implementation indications:
  #   201 with status REQUESTED (or AVAILABLE when the network is done within the request) and a Location header.
  # Testing assets:
  #   A valid SessionCreate on the target's network (S2CVPN_FEATURES_SESSION_BODY), unique application servers per run.
  # References to OAS spec schemas refer to openapi.yaml.

  Background: Common createSession setup
    Given an environment at "apiRoot"
    And the resource "/site-to-cloud-vpn/v0.1/sessions"
    And the header "Content-Type" is set to "application/json"
    And the header "Authorization" is set to a valid access token
    And the header "x-correlator" complies with the schema at "#/components/schemas/XCorrelator"
    And the request body is set by default to a request body compliant with the schema at "/components/schemas/SessionCreate"

  @createSession_01_generic_success_scenario
  Scenario: Common validations for any success scenario
    When the request "createSession" is sent
    Then the response status code is 201
    And the response header "Content-Type" is "application/json"
    And the response header "x-correlator" has same value as the request header "x-correlator"
    And the response header "Location" ends with the response property "$.sessionId"
    And the response body complies with the OAS schema at "#/components/schemas/SessionInfo"
    And the response property "$.status" is "REQUESTED" or "AVAILABLE"
    And the response property "$.customerEdge" is equal to the request body property "$.customerEdge"
    And the response property "$.applicationServers" is equal to the request body property "$.applicationServers"
    And the response property "$.sla" is equal to the request body property "$.sla"
    And the response property "$.guaranteeBandwidth" is equal to the request body property "$.guaranteeBandwidth"
    And the response property "$.statusInfo" does not exist

  @createSession_02_sink_and_sink_credential
  Scenario: Create a session with sink and sinkCredential; the credential is never returned
    Given the request body property "$.sink" is set to a sink the test can read
    And the request body property "$.sinkCredential" is set to {"credentialType": "ACCESSTOKEN", "accessToken": "t0k3n", "accessTokenExpiresUtc": "2099-01-01T00:00:00Z", "accessTokenType": "bearer"}
    When the request "createSession" is sent
    Then the response status code is 201
    And the response property "$.sink" is equal to the request body property "$.sink"
    And the response property "$.sinkCredential" does not exist

  @createSession_03_bgp_routing
  Scenario: Create a session with BGP routing and the customer's AS number
    Given the request body property "$.routeProtocol" is set to "BGP"
    And the request body property "$.customerAsn" is set to 65001
    When the request "createSession" is sent
    Then the response status code is 201
    And the response body complies with the OAS schema at "#/components/schemas/SessionInfo"
    And the response property "$.routeProtocol" is "BGP"
    And the response property "$.customerAsn" is 65001

  @createSession_04_idempotency_key
  Scenario: The same Idempotency-Key returns the first session and creates nothing new
    Given a session was created by the API client with the header "Idempotency-Key" set to "features-key"
    When the request "createSession" is sent
    Then the response status code is 201
    And the response property "$.sessionId" is that of the first creation

  @createSession_400.1_schema_not_compliant
  Scenario: Invalid Argument. Generic Syntax Exception
    Given the request body property "$.customerEdge.primaryIpAddress.colour" is set to "blue"
    When the request "createSession" is sent
    Then the response status code is 400
    And the response header "x-correlator" has same value as the request header "x-correlator"
    And the response header "Content-Type" is "application/json"
    And the response property "$.status" is 400
    And the response property "$.code" is "INVALID_ARGUMENT"
    And the response property "$.message" contains a user friendly text

  @createSession_400.2_no_request_body
  Scenario: Missing request body
    Given the request body is not included
    When the request "createSession" is sent
    Then the response status code is 400
    And the response property "$.status" is 400
    And the response property "$.code" is "INVALID_ARGUMENT"

  @createSession_400.3_empty_request_body
  Scenario: Empty object as request body
    Given the request body is set to {}
    When the request "createSession" is sent
    Then the response status code is 400
    And the response property "$.code" is "INVALID_ARGUMENT"

  @createSession_400.4_empty_property
  Scenario Outline: Error response for empty property in request body
    Given the request body property "<property>" is set to {}
    When the request "createSession" is sent
    Then the response status code is 400
    And the response property "$.code" is "INVALID_ARGUMENT"

    Examples:
      | property                          |
      | $.customerEdge                    |
      | $.providerEdge.primaryIpAddress   |
      | $.applicationServers[0]           |

  @createSession_400.5_missing_required_property
  Scenario Outline: Error response for a missing required property
    Given the request body property "<property>" is removed
    When the request "createSession" is sent
    Then the response status code is 400
    And the response property "$.code" is "INVALID_ARGUMENT"
    And the response property "$.message" contains a user friendly text

    Examples:
      | property              |
      | $.customerEdge        |
      | $.providerEdge        |
      | $.applicationServers  |
      | $.sla                 |
      | $.guaranteeBandwidth  |

  @createSession_400.6_invalid_sla
  Scenario: Error 400 due to sla value not matching allowed enum
    Given the request body property "$.sla" is set to "AAAA"
    When the request "createSession" is sent
    Then the response status code is 400
    And the response property "$.code" is "INVALID_ARGUMENT"

  @createSession_400.7_out_of_range_value
  Scenario Outline: Error 400 due to a value out of its allowed range
    Given the request body property "<property>" is set to <value>
    When the request "createSession" is sent
    Then the response status code is 400
    And the response property "$.status" is 400
    And the response property "$.code" is "OUT_OF_RANGE"

    Examples:
      | property             | value                                                            |
      | $.guaranteeBandwidth | 0                                                                |
      | $.guaranteeBandwidth | 1000001                                                          |
      | $.maxLatency         | 0                                                                |
      | $.applicationFlows   | [{"protocol": "TCP", "serverPorts": {"ports": [70000]}}]         |
      | $.duration           | {"value": 100, "unit": "years"}                                  |

  @createSession_400.8_unsupported_sink_credential_type
  Scenario Outline: Unsupported sinkCredential.credentialType value
    Given the request body property "$.sink" is set to "https://sink.example.com/events"
    And the request body property "$.sinkCredential" is set to {"credentialType": "<type>", "accessToken": "x", "accessTokenExpiresUtc": "2099-01-01T00:00:00Z", "accessTokenType": "bearer"}
    When the request "createSession" is sent
    Then the response status code is 400
    And the response property "$.code" is "INVALID_ARGUMENT"

    Examples:
      | type         |
      | PLAIN        |
      | REFRESHTOKEN |

  @createSession_400.9_sink_credential_invalid_token_type
  Scenario: accessTokenType other than bearer
    Given the request body property "$.sink" is set to "https://sink.example.com/events"
    And the request body property "$.sinkCredential" is set to {"credentialType": "ACCESSTOKEN", "accessToken": "x", "accessTokenExpiresUtc": "2099-01-01T00:00:00Z", "accessTokenType": "mac"}
    When the request "createSession" is sent
    Then the response status code is 400
    And the response property "$.code" is "INVALID_ARGUMENT"

  @createSession_400.10_invalid_x-correlator
  Scenario: Invalid x-correlator header
    Given the header "x-correlator" does not comply with the schema at "#/components/schemas/XCorrelator"
    When the request "createSession" is sent
    Then the response status code is 400
    And the response header "x-correlator" is not set to the invalid value
    And the response property "$.code" is "INVALID_ARGUMENT"

  @createSession_400.11_empty_application_server_list
  Scenario: Empty application server list
    Given the request body property "$.applicationServers" is set to []
    When the request "createSession" is sent
    Then the response status code is 400
    And the response property "$.code" is "INVALID_ARGUMENT"

  @createSession_400.12_application_server_list_is_too_large
  Scenario: Application server list is too large
    Given the request body property "$.applicationServers" is a list of 17 distinct application servers
    When the request "createSession" is sent
    Then the response status code is 400
    And the response property "$.code" is "INVALID_ARGUMENT"

  @createSession_400.13_customer_asn_with_static_routing
  Scenario: customerAsn is refused with static routing
    Given the request body property "$.customerAsn" is set to 65001
    When the request "createSession" is sent
    Then the response status code is 400
    And the response property "$.code" is "INVALID_ARGUMENT"

  @createSession_400.14_bgp_without_customer_asn
  Scenario: BGP needs customerAsn
    Given the request body property "$.routeProtocol" is set to "BGP"
    When the request "createSession" is sent
    Then the response status code is 400
    And the response property "$.code" is "INVALID_ARGUMENT"

  @createSession_400.15_service_name_too_long
  Scenario: A string longer than its maxLength
    Given the request body property "$.serviceName" is a string of 65 characters
    When the request "createSession" is sent
    Then the response status code is 400
    And the response property "$.code" is "INVALID_ARGUMENT"

  @createSession_400.16_invalid_sink
  Scenario: A sink that is not an https URL
    Given the request body property "$.sink" is set to "ftp://sink.example.com/events"
    When the request "createSession" is sent
    Then the response status code is 400
    And the response property "$.code" is "INVALID_ARGUMENT"

  @createSession_400.17_body_not_json
  Scenario: The body is not valid JSON
    Given the request body is set to a text that is not JSON
    When the request "createSession" is sent
    Then the response status code is 400
    And the response property "$.code" is "INVALID_ARGUMENT"

  @createSession_401.1_no_authorization_header
  Scenario: Error response for no header "Authorization"
    Given the header "Authorization" is not sent
    When the request "createSession" is sent
    Then the response status code is 401
    And the response header "x-correlator" has same value as the request header "x-correlator"
    And the response property "$.status" is 401
    And the response property "$.code" is "UNAUTHENTICATED"
    And the response property "$.message" contains a user friendly text

  @createSession_401.2_expired_access_token
  Scenario: Error response for expired access token
    Given the header "Authorization" is set to an expired access token
    When the request "createSession" is sent
    Then the response status code is 401
    And the response property "$.code" is "UNAUTHENTICATED"

  @createSession_401.3_invalid_access_token
  Scenario: Error response for invalid access token
    Given the header "Authorization" is set to an invalid access token
    When the request "createSession" is sent
    Then the response status code is 401
    And the response property "$.code" is "UNAUTHENTICATED"

  @createSession_403.1_missing_access_token_scope
  Scenario: Missing access token scope
    Given the header "Authorization" is set to a valid access token which does not include scope "site-to-cloud-vpn:sessions:create"
    When the request "createSession" is sent
    Then the response status code is 403
    And the response property "$.status" is 403
    And the response property "$.code" is "PERMISSION_DENIED"
    And the response property "$.message" contains a user friendly text

  @createSession_409.1_already_exists
  Scenario: Two active sessions for the same edges and application servers
    Given the request body is set to the body of an existing active session
    When the request "createSession" is sent
    Then the response status code is 409
    And the response header "x-correlator" has same value as the request header "x-correlator"
    And the response property "$.status" is 409
    And the response property "$.code" is "ALREADY_EXISTS"

  @createSession_415.1_unsupported_media_type
  Scenario: The body is not sent as JSON
    Given the header "Content-Type" is set to "application/xml"
    When the request "createSession" is sent
    Then the response status code is 415
    And the response property "$.status" is 415
    And the response property "$.code" is "UNSUPPORTED_MEDIA_TYPE"

  @createSession_422.1_location_not_served
  Scenario: The customer edge is not attached to this provider's network
    Given the request body property "$.customerEdge.primaryIpAddress.ipv4Address" is set to an address the network does not serve
    When the request "createSession" is sent
    Then the response status code is 422
    And the response property "$.status" is 422
    And the response property "$.code" is "SITE_TO_CLOUD_VPN.LOCATION_NOT_SERVED"
    And the response property "$.message" contains a user friendly text

  @createSession_422.2_insufficient_resources
  Scenario: The network has no path with the bandwidth asked
    Given the request body property "$.guaranteeBandwidth" is set to 900000
    When the request "createSession" is sent
    Then the response status code is 422
    And the response property "$.status" is 422
    And the response property "$.code" is "SITE_TO_CLOUD_VPN.INSUFFICIENT_RESOURCES"
