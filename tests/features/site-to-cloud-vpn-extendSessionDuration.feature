Feature: CAMARA Site-to-Cloud VPN API, v0.1 - Operation extendSessionDuration
  # Implementation indications:
  #   Only while AVAILABLE; the total duration is capped at the operator's maximum.
  # Testing assets:
  #   A valid SessionCreate on the target's network (S2CVPN_FEATURES_SESSION_BODY); a second API client's token.
  # References to OAS spec schemas refer to openapi.yaml.

  Background: Common extendSessionDuration setup
    Given an environment at "apiRoot"
    And the resource "/site-to-cloud-vpn/v0.1/sessions/{sessionId}/extend"
    And the header "Content-Type" is set to "application/json"
    And the header "Authorization" is set to a valid access token
    And the header "x-correlator" complies with the schema at "#/components/schemas/XCorrelator"
    And the path parameter "sessionId" is set by default to an existing session
    And the request body is set by default to a request body compliant with the schema at "/components/schemas/ExtendRequest"

  @extendSessionDuration_01_generic_success_scenario
  Scenario: Common validations for any success scenario
    Given an existing session created with the request body property "$.duration" set to {"value": 2, "unit": "hours"}
    When the request "extendSessionDuration" is sent
    Then the response status code is 200
    And the response header "x-correlator" has same value as the request header "x-correlator"
    And the response body complies with the OAS schema at "#/components/schemas/SessionInfo"
    And the response property "$.duration.value" is 3
    And the response property "$.status" is "AVAILABLE"
    And reading the session gives the response property "$.duration.value" as 3

  @extendSessionDuration_02_exceed_max_duration
  Scenario: Extended duration cannot exceed the maximum duration
    Given the request body property "$.requestedAdditionalDuration" is set to {"value": 99, "unit": "years"}
    When the request "extendSessionDuration" is sent
    Then the response status code is 200
    And the response property "$.duration.value" is at most 43800

  @extendSessionDuration_400.1_schema_not_compliant
  Scenario: Invalid Argument. Duration unit not in the enum
    Given the request body property "$.requestedAdditionalDuration.unit" is set to "weeks"
    When the request "extendSessionDuration" is sent
    Then the response status code is 400
    And the response property "$.status" is 400
    And the response property "$.code" is "INVALID_ARGUMENT"
    And the response property "$.message" contains a user friendly text

  @extendSessionDuration_400.3_no_request_body
  Scenario: Missing request body
    Given the request body is not included
    When the request "extendSessionDuration" is sent
    Then the response status code is 400
    And the response property "$.code" is "INVALID_ARGUMENT"

  @extendSessionDuration_400.4_empty_request_body
  Scenario: Empty object as request body
    Given the request body is set to {}
    When the request "extendSessionDuration" is sent
    Then the response status code is 400
    And the response property "$.code" is "INVALID_ARGUMENT"

  @extendSessionDuration_400.6_negative_duration
  Scenario: A negative additional duration is out of range
    Given the request body property "$.requestedAdditionalDuration.value" is set to -1
    When the request "extendSessionDuration" is sent
    Then the response status code is 400
    And the response property "$.code" is "OUT_OF_RANGE"

  @extendSessionDuration_400.2_invalid_session_id
  Scenario: Invalid Argument. sessionId is not a UUID
    Given the path parameter "sessionId" is set to "not-a-uuid"
    When the request "extendSessionDuration" is sent
    Then the response status code is 400
    And the response header "x-correlator" has same value as the request header "x-correlator"
    And the response property "$.status" is 400
    And the response property "$.code" is "INVALID_ARGUMENT"
    And the response property "$.message" contains a user friendly text

  @extendSessionDuration_400.5_invalid_x-correlator
  Scenario: Invalid x-correlator header
    Given the header "x-correlator" does not comply with the schema at "#/components/schemas/XCorrelator"
    When the request "extendSessionDuration" is sent
    Then the response status code is 400
    And the response header "x-correlator" is not set to the invalid value
    And the response property "$.status" is 400
    And the response property "$.code" is "INVALID_ARGUMENT"

  @extendSessionDuration_401.1_no_authorization_header
  Scenario: Error response for no header "Authorization"
    Given the header "Authorization" is not sent
    When the request "extendSessionDuration" is sent
    Then the response status code is 401
    And the response header "x-correlator" has same value as the request header "x-correlator"
    And the response property "$.status" is 401
    And the response property "$.code" is "UNAUTHENTICATED"
    And the response property "$.message" contains a user friendly text

  @extendSessionDuration_401.2_expired_access_token
  Scenario: Error response for expired access token
    Given the header "Authorization" is set to an expired access token
    When the request "extendSessionDuration" is sent
    Then the response status code is 401
    And the response property "$.status" is 401
    And the response property "$.code" is "UNAUTHENTICATED"

  @extendSessionDuration_401.3_invalid_access_token
  Scenario: Error response for invalid access token
    Given the header "Authorization" is set to an invalid access token
    When the request "extendSessionDuration" is sent
    Then the response status code is 401
    And the response property "$.status" is 401
    And the response property "$.code" is "UNAUTHENTICATED"

  @extendSessionDuration_403.1_missing_access_token_scope
  Scenario: Missing access token scope
    Given the header "Authorization" is set to a valid access token which does not include scope "site-to-cloud-vpn:sessions:update"
    When the request "extendSessionDuration" is sent
    Then the response status code is 403
    And the response property "$.status" is 403
    And the response property "$.code" is "PERMISSION_DENIED"
    And the response property "$.message" contains a user friendly text

  @extendSessionDuration_403.2_session_token_mismatch
  Scenario: Session not created by the API client given in the access token
    Given the path parameter "sessionId" is set to the id of a session created by another API client
    When the request "extendSessionDuration" is sent
    Then the response status code is 403
    And the response property "$.status" is 403
    And the response property "$.code" is "PERMISSION_DENIED"

  @extendSessionDuration_404.1_not_found
  Scenario: sessionId of a non-existing session
    Given the path parameter "sessionId" is set to a random UUID
    When the request "extendSessionDuration" is sent
    Then the response status code is 404
    And the response header "x-correlator" has same value as the request header "x-correlator"
    And the response property "$.status" is 404
    And the response property "$.code" is "NOT_FOUND"
    And the response property "$.message" contains a user friendly text

  @extendSessionDuration_409.1_session_not_available
  Scenario: Extending a session that is not AVAILABLE
    Given the path parameter "sessionId" is set to the id of a session that has expired
    When the request "extendSessionDuration" is sent
    Then the response status code is 409
    And the response property "$.status" is 409
    And the response property "$.code" is "INCOMPATIBLE_STATE"

  @extendSessionDuration_415.1_unsupported_media_type
  Scenario: The body is not sent as JSON
    Given the header "Content-Type" is set to "text/plain"
    When the request "extendSessionDuration" is sent
    Then the response status code is 415
    And the response property "$.code" is "UNSUPPORTED_MEDIA_TYPE"
